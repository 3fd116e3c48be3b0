"""Keeps runs across machines: copies a runs folder into one small enough
for version control (`kerasnas.recipes.common.archive_runs`).

Finished runs keep their results (config, history, scores, rankings,
reports, plots) without weights; unfinished ones keep their latest
checkpoint, so a later machine continues them:

```
python tools/archive_runs.py runs/compare recipes/results/compare   # save
cp -r recipes/results/compare runs/compare                          # later machine
python recipes/nb201_compare.py ... --output runs/compare --resume  # continues
```
"""

import argparse
import json

from kerasnas.recipes.common import archive_runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a folder of runs (e.g. runs/compare)")
    parser.add_argument("destination", help="where the archive goes (e.g. recipes/results/compare)")
    args = parser.parse_args(argv)
    try:
        summary = archive_runs(args.source, args.destination)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps({k: summary[k] for k in ("finished", "unfinished")}, indent=1))
    print(f"{summary['bytes'] / 1e6:.1f} MB in {args.destination}")


if __name__ == "__main__":
    main()
