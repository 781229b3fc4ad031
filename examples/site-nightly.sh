#!/bin/bash
#SBATCH --job-name=hpcannotate-site --partition=service --time=00:30:00 --output=hpcannotate-site-%j.out
# Refresh the catalog, the site file and the web site of hpcannotate; run from the directory that
# holds them (sbatch from there, or cron: `cd DIR && ./site-nightly.sh`). As a Slurm job it queues
# the next night's run first. SBATCH_PARTITION=... overrides the partition above.
set -euo pipefail
registry=${HPCANNOTATE_REGISTRY:-registry.example.org/hpc}
if [ -n "${SLURM_JOB_ID:-}" ]; then
  # the next 02:00 (tomorrow's, once today's has passed); $0 is Slurm's copy of this script
  sbatch --begin="${HPCANNOTATE_NEXT:-02:00}" "$0"
fi
# exit 1 = some tags or partitions could not be read: kept in the files with their errors
hpcannotate discover "$registry" -o catalog.json --no-progress || [ $? -eq 1 ]
hpcannotate site --slurm --srun-arg=--time=5 -o site.json || [ $? -eq 1 ]
rm -rf www.new
hpcannotate report catalog.json --site site.json -o www.new
rm -rf www.old
if [ -d www ]; then mv www www.old; fi
mv www.new www
