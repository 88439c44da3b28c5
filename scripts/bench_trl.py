"""TRL's GRPOTrainer on one of r1zero bench's workloads (16 prompts x 8 completions, prompt 150).

    python scripts/bench_trl.py --shape qwen2.5-3b --workdir /tmp/trl --out trl.json
    python scripts/bench_trl.py --workload tutorial --steps 1 --workdir /tmp/trl --out trl.json

``--workload reference`` forces 512 tokens (``min_new_tokens``); ``tutorial`` gives each
completion the bench's forced length (a logits processor bans EOS before it, forces it there).

A thin launcher of ``r1zero.bench.trl_step`` (``r1zero bench --sections trl`` runs it too and
folds the result into its JSON). Needs trl==1.16.0 and datasets.
"""

import sys

from r1zero.bench.trl_step import main

if __name__ == "__main__":
    main(sys.argv[1:])
