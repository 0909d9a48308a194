# GPU evaluation image: the CUDA build of torch ships its own CUDA libraries, so a plain Python base
# with the NVIDIA container runtime (docker run --gpus all) is enough.
#   docker build -t autoclint .
#   docker run --gpus all -v /path/to/datasets:/data autoclint \
#       ./run_local_test.sh -dataset_dir=/data/Cifar -time_budget=1200 -result_dir=/data/results/Cifar
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /autoclint
COPY requirements.txt pyproject.toml ./
COPY scripts ./scripts
RUN python -m pip install --no-cache-dir -r requirements.txt && python -m pip uninstall -y triton
COPY . .
RUN python -m pip install --no-cache-dir --no-deps -e . \
    && mkdir -p .venv/bin && ln -s "$(command -v python)" .venv/bin/python \
    && sha256sum requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1 > .venv/.requirements.sha256
ENV TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
CMD ["./run_local_test.sh"]
