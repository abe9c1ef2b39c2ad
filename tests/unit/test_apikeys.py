from tenants import apikeys


def test_new_keys_are_well_formed_unique_and_prefixed() -> None:
    keys = {apikeys.new_raw_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert apikeys.is_well_formed(key)
        assert apikeys.visible_prefix(key).startswith("mpk_")
        assert len(apikeys.visible_prefix(key)) == 12


def test_malformed_keys_are_refused() -> None:
    key = apikeys.new_raw_key()
    for bad in ["", key[:-1], key + "x", key.replace("mpk_", "sk__"), key[:-1] + "-", "Bearer"]:
        assert not apikeys.is_well_formed(bad)


def test_the_hash_is_sha256_hex_and_not_the_key() -> None:
    key = apikeys.new_raw_key()
    digest = apikeys.hash_key(key)
    assert len(digest) == 64
    assert key not in digest
    assert apikeys.hash_key(key) == digest
