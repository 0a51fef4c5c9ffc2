"""Step 2: a random forest fitted on the train rows, to models/model.joblib."""

from pathlib import Path

import joblib
import pandas as pd
from _bench import done, params
from sklearn.ensemble import RandomForestClassifier

p = params()
frame = pd.read_csv("data/prepared.csv")
train = frame[frame["split"] == "train"]
model = RandomForestClassifier(
    n_estimators=p["n_estimators"], max_depth=p["max_depth"], random_state=p["seed"], n_jobs=1
)
model.fit(train.drop(columns=["split", "target"]), train["target"])
Path("models").mkdir(exist_ok=True)
joblib.dump(model, "models/model.joblib")
done("train")
