"""dynamodel's benchmark suite against its peers, and the speed targets it checks.

Run ``python -m benchmarks`` (about 15 minutes on 2 cores) to print the table, check the
speed targets and rewrite docs/benchmarks.md; ``python -m benchmarks --quick`` runs every case
with tiny sizes in well under a minute (CI's smoke test) and writes nothing unless ``--out`` is
given; ``--cases d,g`` runs some cases only. Peers other than boto3 need the proposed ``bench``
extra (PynamoDB, pydynox); a missing one is reported, not fatal.
"""
