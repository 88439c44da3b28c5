"""TRL's GRPOTrainer on r1zero's reference workload (16 prompts x 8 completions, 150 + 512 tokens).

    python scripts/bench_trl.py --shape qwen2.5-3b --workdir /tmp/trl --out trl.json

A thin launcher of ``r1zero.bench.trl_step`` (``r1zero bench --sections trl`` runs it too and
folds the result into its JSON). Needs trl==1.16.0 and datasets.
"""

import sys

from r1zero.bench.trl_step import main

if __name__ == "__main__":
    main(sys.argv[1:])
