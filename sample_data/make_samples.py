"""Write the small sample files used by `make demo` and the docs (seeded, so they never change).

transactions.csv            card transactions: numbers, integers, booleans, categories, datetimes
                            and missing cells, with about 2% planted anomalies
transactions_labelled.csv   the same rows with an `is_anomaly` column (1 = planted)
machines.csv                a time series: three presses, one row a minute for a day, three
                            sensors each, with planted anomalies and an `is_anomaly` column

Planted kinds: an extreme amount; a broken relation (amount far from items x unit price of the
merchant category); a rare combination of categories (a country that never uses a channel); a
store purchase in the middle of the night.

Planted in machines.csv: press-a runs hot from 02:10 to 02:35 (pressure and temperature up
together); a one-minute flow spike on press-b at 09:00; on press-c pressure stops following
flow from 16:00 to 16:29; press-a's temperature sensor freezes from 20:00 to 20:44.

    python sample_data/make_samples.py --out sample_data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = {"grocery": 12.0, "fuel": 45.0, "electronics": 180.0, "restaurant": 25.0,
              "clothing": 40.0, "pharmacy": 15.0}
COUNTRY_CHANNELS = {"DE": ["store", "online"], "FR": ["store", "online"], "NL": ["store", "online",
                    "app"], "ES": ["store"], "IT": ["store", "app"]}


def make_transactions(n: int = 5000, anomaly_rate: float = 0.02, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cats = rng.choice(list(CATEGORIES), size=n, p=[0.3, 0.15, 0.05, 0.25, 0.15, 0.1])
    countries = rng.choice(list(COUNTRY_CHANNELS), size=n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    channels = np.array([rng.choice(COUNTRY_CHANNELS[c]) for c in countries])
    items = rng.integers(1, 6, size=n)
    unit = np.array([CATEGORIES[c] for c in cats])
    amount = np.round(items * unit * rng.lognormal(0, 0.15, size=n), 2)
    start = np.datetime64("2026-03-02T00:00:00")
    hours = rng.uniform(8, 21, size=n)  # daytime shopping
    days = rng.integers(0, 28, size=n)
    ts = start + (days * 86400 + hours * 3600).astype("timedelta64[s]")
    online = channels != "store"
    age = rng.integers(30, 3000, size=n).astype(float)
    age[rng.random(n) < 0.05] = np.nan  # some accounts have no known age
    label = np.zeros(n, dtype=int)

    idx = rng.choice(n, size=int(anomaly_rate * n), replace=False)
    for k, i in enumerate(idx):
        kind = k % 4
        if kind == 0:  # extreme value
            amount[i] = round(amount[i] * rng.uniform(15, 40), 2)
        elif kind == 1:  # broken relation: few items, price of many
            items[i] = 1
            amount[i] = round(unit[i] * rng.uniform(6, 10), 2)
        elif kind == 2:  # rare category combination: Spain never uses the app
            countries[i], channels[i], online[i] = "ES", "app", True
        else:  # a store purchase at night
            ts[i] = ts[i].astype("datetime64[D]") + np.timedelta64(int(rng.integers(2, 4)), "h")
            channels[i], online[i] = "store", False
        label[i] = 1

    return pd.DataFrame({
        "txn_id": [f"T{i:06d}" for i in range(n)],
        "timestamp": pd.to_datetime(ts),
        "amount": amount,
        "n_items": items,
        "merchant_category": cats,
        "country": countries,
        "channel": channels,
        "is_online": online,
        "account_age_days": age,
        "is_anomaly": label,
    })


def make_machines(steps: int = 1440, seed: int = 0) -> pd.DataFrame:
    """Three presses, one row a minute. Flow follows a 90-minute cycle; pressure follows flow;
    temperature drifts with a slow daily cycle and lags pressure a little."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-03-09T00:00:00")
    frames = []
    for k, name in enumerate(["press-a", "press-b", "press-c"]):
        t = np.arange(steps)
        flow = 50 + 10 * np.sin(2 * np.pi * t / 90 + k) + rng.normal(0, 1.0, steps)
        pressure = 2.0 + 0.04 * flow + rng.normal(0, 0.05, steps)
        temp = 60 + 3 * np.sin(2 * np.pi * t / steps) + 5 * (pressure - pressure.mean()) \
            + rng.normal(0, 0.3, steps)
        label = np.zeros(steps, dtype=int)
        if name == "press-a":
            hot = slice(130, 156)  # 02:10 .. 02:35
            pressure[hot] += 0.6
            temp[hot] += 6
            label[hot] = 1
            frozen = slice(1200, 1245)  # 20:00 .. 20:44
            temp[frozen] = temp[frozen.start]
            label[frozen] = 1
        elif name == "press-b":
            flow[540] += 25  # 09:00
            label[540] = 1
        else:
            broken = slice(960, 990)  # 16:00 .. 16:29
            pressure[broken] = 2.0 + 0.04 * (100 - flow[broken])
            label[broken] = 1
        frames.append(pd.DataFrame({
            "machine": name, "time": pd.to_datetime(start + t.astype("timedelta64[m]")),
            "pressure": pressure.round(3), "temperature": temp.round(2), "flow": flow.round(2),
            "is_anomaly": label}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    df = make_transactions(args.rows, seed=args.seed)
    df.to_csv(args.out / "transactions_labelled.csv", index=False)
    df.drop(columns=["is_anomaly"]).to_csv(args.out / "transactions.csv", index=False)
    print(f"wrote {len(df)} rows ({int(df.is_anomaly.sum())} planted anomalies) to {args.out}")
    ts = make_machines(seed=args.seed)
    ts.to_csv(args.out / "machines.csv", index=False)
    print(f"wrote {len(ts)} rows of 3 machines ({int(ts.is_anomaly.sum())} planted anomalous "
          f"steps) to {args.out / 'machines.csv'}")


if __name__ == "__main__":
    main()
