# A day as Chinese writes it: "11月27日", "1月5日" (Django's own pads the month: "01月5日").
MONTH_DAY_FORMAT = "n月j日"
