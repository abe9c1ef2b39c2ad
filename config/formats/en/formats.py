# A short day, as a chart's axis shows it: "Nov 27" (Django's own is "November 27").
MONTH_DAY_FORMAT = "M j"
