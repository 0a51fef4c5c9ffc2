"""Step 1: scikit-learn's bundled breast cancer data, split, to data/prepared.csv."""

from pathlib import Path

from _bench import done, params
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

p = params()
frame = load_breast_cancer(as_frame=True).frame
train, _ = train_test_split(
    frame, test_size=p["test_size"], random_state=p["seed"], stratify=frame["target"]
)
frame.insert(0, "split", ["train" if i in train.index else "test" for i in frame.index])
Path("data").mkdir(exist_ok=True)
frame.to_csv("data/prepared.csv", index=False, float_format="%.10g")
done("prepare")
