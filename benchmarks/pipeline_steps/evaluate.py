"""Step 3: the model scored on the test rows, to metrics.json."""

import json
from pathlib import Path

import joblib
import pandas as pd
from _bench import done, params
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

p = params()
frame = pd.read_csv("data/prepared.csv")
test = frame[frame["split"] == "test"]
model = joblib.load("models/model.joblib")
x, y = test.drop(columns=["split", "target"]), test["target"]
proba = model.predict_proba(x)[:, 1]
pred = (proba >= 0.5).astype(int)
metrics = {
    "accuracy": round(float(accuracy_score(y, pred)), 6),
    "f1": round(float(f1_score(y, pred)), 6),
    "roc_auc": round(float(roc_auc_score(y, proba)), 6),
    "test_rows": len(test),
    "trees": p["n_estimators"],
    "max_depth": p["max_depth"],
}
Path("metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
done("evaluate")
