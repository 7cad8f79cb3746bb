"""What the study's summary scripts share: reading one CSV per seed
directory, grouped by configuration, and formatting bytes and mean ± sd."""
import csv
import statistics


def human_bytes(b):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if b < 1000 or unit == "TB":
            return f"{b:.0f} {unit}" if b >= 100 or unit == "B" else f"{b:.3g} {unit}"
        b /= 1000
    return ""


def mean_sd(values, fmt):
    """mean ± sample standard deviation; one value alone; — for none."""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return fmt.format(statistics.mean(values)) + " ± " + fmt.format(statistics.stdev(values))


def rows_by_config(dirs, filename):
    """{config: [one row per directory]} and the configurations in first-seen order."""
    runs = {}
    order = []
    for d in dirs:
        with open(f"{d}/{filename}", newline="") as f:
            for row in csv.DictReader(f):
                if row["config"] not in runs:
                    runs[row["config"]] = []
                    order.append(row["config"])
                runs[row["config"]].append(row)
    return runs, order
