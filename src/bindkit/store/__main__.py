"""`python -m bindkit.store embed|search ...`, the same as `bindkit embed|search`, e.g. under torchrun:

torchrun --nproc_per_node 2 -m bindkit.store embed photos/ --store db/ --model runs/demo/latest/model
"""

from bindkit.cli import main

if __name__ == "__main__":
    main()
