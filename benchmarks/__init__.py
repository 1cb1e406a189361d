"""dynamodel's benchmark suite against its peers (issue 9).

Run ``python -m benchmarks`` (about 10 minutes on 2 cores) to print the table, check the
speed targets and rewrite docs/benchmarks.md; ``python -m benchmarks --quick`` runs every case
with tiny sizes in well under a minute (CI's smoke test) and writes nothing unless ``--out`` is
given. Peers other than boto3 need the proposed ``bench`` extra (PynamoDB, pydynox); a missing
one is reported, not fatal.
"""
