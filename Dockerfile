# dptrack image: the `dptrack-build` CLI, and a Dataflow custom container (CPU workers).
#
# It starts from the Beam Python SDK image, so the SDK's boot entrypoint (/opt/apache/beam/boot)
# is there and the Beam and Python versions match a launcher that installed requirements.txt
# with Python 3.11. Keep BEAM_VERSION equal to the launcher's `python -c "import apache_beam;
# print(apache_beam.__version__)"`.
#
#   docker build -t dptrack --build-arg BEAM_VERSION=2.77.0 .
#   docker run --rm -v $PWD:/work --entrypoint dptrack-build dptrack run --help
#   # Dataflow: push the image, then pass --sdk_container_image=REGISTRY/dptrack:TAG to `run`.
#
# torch comes from PyTorch's CPU wheel index (the PyPI default would pull CUDA wheels, GBs).
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/dptrack

COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY dptrack_pipeline ./dptrack_pipeline
COPY pipelines ./pipelines
COPY schemas ./schemas
RUN pip install --no-deps . && dptrack-build --help > /dev/null

# Workers start through the Beam SDK harness; run the CLI with --entrypoint dptrack-build.
ENTRYPOINT ["/opt/apache/beam/boot"]
