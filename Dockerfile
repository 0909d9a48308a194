# GPU evaluation image: the CUDA build of torch (PyPI's default wheel) ships its own CUDA libraries, so a
# plain Python base with the NVIDIA container runtime (docker run --gpus all) is enough. Same pinned
# requirements as the project; triton is removed (with it, importing TensorFlow then torchvision segfaults).
#   docker build -t autoclint .
#   docker run --gpus all -v /path/to/datasets:/data autoclint \
#       -dataset_dir=/data/Cifar -time_budget=1200 -result_dir=/data/results/Cifar
# With no arguments it runs the bundled dataset for 60 s. Arguments are run_local_test.sh's (--help).
FROM python:3.11-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian's versions are not pinned: a slim image's mirror drops old package versions, so a pin breaks the
# build within weeks; these two are only the runtime libraries OpenCV links against.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /autoclint
COPY requirements.txt pyproject.toml ./
COPY scripts ./scripts
RUN python -m pip install --no-cache-dir -r requirements.txt && python -m pip uninstall -y triton
COPY . .
RUN python -m pip install --no-cache-dir --no-deps -e . \
    && mkdir -p .venv/bin && ln -s "$(command -v python)" .venv/bin/python \
    && sha256sum "$PWD/requirements.txt" "$PWD/pyproject.toml" | sha256sum | cut -d' ' -f1 > .venv/.requirements.sha256
# The stamp is scripts/ensure_venv.sh's (sha256sum prints the paths, so it hashes them as that script
# names them, under /autoclint): run_local_test.sh then uses this Python instead of building a venv.
ENV TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
ENTRYPOINT ["./run_local_test.sh"]
