#!/usr/bin/env bash
# Use case 4 side by side with the original Neuroptimus: CMA-ES, population 20 x 10 generations
# (200 evaluations) on 2 processes, whole process timed, one run after the other, ROUNDS times:
# this tool with engine neuron, this tool with engine coreneuron, the original tool.
#
#   bash docs/benchmarks/side_by_side_original.sh [FOLDER] [ROUNDS]     (neuroptimus on PATH)
#
# ORIGINAL_CHECKOUT=DIR takes the original repository from DIR (at that commit) instead of
# cloning it from GitHub.
#
# The original tool (commit a0d7c9d, the one whose use-case files this project verifies) is
# installed in FOLDER/original with NEURON 8.2.6 and the versions it was written for; the use
# case's files come from its repository, its mechanisms compiled by hand as it expects. This
# tool imports the same settings file (neuroptimus import-settings) and compiles its own.
set -euo pipefail
folder=$(realpath -m "${1:-side-by-side}")
rounds=${2:-2}
commit=a0d7c9dfbf5646d9d1c39228fb9518bd3ab79e06
case=testcase_4_ca1_pc_simplification
mkdir -p "$folder" && cd "$folder"

if [ ! -x original/venv/bin/python ]; then
  if [ -n "${ORIGINAL_CHECKOUT:-}" ]; then  # a copy of the repository at that commit
    mkdir -p original && cp -r "$ORIGINAL_CHECKOUT" original/src
  else
    git clone -q https://github.com/KaliLab/neuroptimus original/src
    git -C original/src checkout -q $commit
  fi
  python3 -m venv original/venv
  original/venv/bin/pip install -q neuron==8.2.6 numpy==1.26.4 efel==4.3.6 cmaes==0.10.0 \
    matplotlib==3.8.4 scipy==1.13.1
  cp -r original/src/neuroptimus/new_test_files/$case uc4
  (cd uc4/mod_files && ../../original/venv/bin/nrnivmodl > /dev/null)
fi

# The original's settings with this folder's files, CMA-ES 20 x 10 on 2 processes
settings() {  # settings NAME: writes NAME.json, whose results go to NAME/
  python3 - "$1" <<'EOF'
import json, os, sys
name, case = sys.argv[1], "uc4"
data = json.load(open(f"{case}/testcase_4_ca1_pc_simplification_settings.json"))
a = data["attributes"]
os.makedirs(name, exist_ok=True)
a["base_dir"] = os.path.abspath(name)
a["model_path"] = os.path.abspath(f"{case}/ca1pc_model.hoc")
a["model_spec_dir"] = os.path.abspath(f"{case}/mod_files")
a["input_dir"] = os.path.abspath(f"{case}/Vinj48_2c_1.dat")
a["current_algorithm"] = {"CMAES_CMAES": {"size_of_population": 20,
                                          "number_of_generations": 10, "number_of_cpu": 2}}
json.dump(data, open(f"{name}.json", "w"), indent=1)
EOF
}

neuroptimus import-settings uc4/${case}_settings.json --out uc4/problem.yaml --force > /dev/null
sed 's/^model:$/model:\n  engine: coreneuron/' uc4/problem.yaml > uc4/problem-coreneuron.yaml
values=0.005,0.05,0.05,0.005,0.05,0.05,0.5,0.5,0.5
for problem in uc4/problem.yaml uc4/problem-coreneuron.yaml; do  # compile outside the timing
  neuroptimus evaluate $problem --values $values > /dev/null
done

timed() {  # timed LABEL COMMAND…: one line with the wall time and the load after it
  local start end
  start=$(date +%s.%N)
  "${@:2}" > "logs/$1.log" 2>&1
  end=$(date +%s.%N)
  python3 -c "import os, sys; print(f'{sys.argv[1]},{float(sys.argv[3]) - float(sys.argv[2]):.1f},{os.getloadavg()[0]:.2f}')" \
    "$1" "$start" "$end"
}

mkdir -p logs runs
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -sr), $(pip list 2>/dev/null | awk '$1 == "neuroptimus" {print $1, $2}')"
echo "run,wall_s,load_1min_after"
for round in $(seq "$rounds"); do
  for engine in neuron coreneuron; do
    problem=uc4/problem.yaml
    [ $engine = coreneuron ] && problem=uc4/problem-coreneuron.yaml
    rm -rf runs/$engine-$round.zarr
    timed "this-tool-$engine-$round" neuroptimus run $problem --population 20 --generations 10 \
      --workers 2 --store runs/$engine-$round.zarr
  done
  rm -rf original-$round original-$round.json
  settings original-$round
  timed "original-$round" env MPLBACKEND=Agg original/venv/bin/python \
    original/src/neuroptimus/neuroptimus.py -c "$folder/original-$round.json"
done
