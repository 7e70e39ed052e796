# dptrack image: the `dptrack-build` CLI, and a Dataflow custom container (CPU workers).
# GPU workers (FlowNet2 on CUDA) use `Dockerfile.gpu`, which says why it is a separate file.
#
# It starts from the Beam Python SDK image, so the SDK's boot entrypoint (/opt/apache/beam/boot)
# is there and the Beam and Python versions match a launcher that installed requirements.txt
# with Python 3.11. Keep BEAM_VERSION equal to the launcher's `python -c "import apache_beam;
# print(apache_beam.__version__)"` (and the same default as in Dockerfile.gpu).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/dptrack:TAG --build-arg BEAM_VERSION=2.77.0 .
#   docker run --rm -v $PWD:/work --entrypoint dptrack-build IMAGE run --help
#   # Dataflow: push the image, then pass --sdk_container_image=IMAGE --sdk_location=container
#   # to `run`.
#
# torch comes from PyTorch's CPU wheel index (the PyPI default would pull CUDA wheels, GBs);
# requirements.txt's `torch==2.13.0` is then already satisfied by 2.13.0+cpu. apache-beam[gcp] is
# pinned to BEAM_VERSION so that nothing in requirements.txt can move the SDK away from the boot
# program of the base image.
ARG BEAM_VERSION=2.77.0
ARG PYTHON_VERSION=3.11
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}
ARG BEAM_VERSION
ARG PYTHON_VERSION

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/dptrack

COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install "apache-beam[gcp]==${BEAM_VERSION}" -r requirements.txt

COPY pyproject.toml README.md ./
COPY dptrack_pipeline ./dptrack_pipeline
COPY pipelines ./pipelines
COPY schemas ./schemas
RUN pip install --no-deps . \
 && dptrack-build --help > /dev/null \
 && python -c "import sys, apache_beam; \
v = '.'.join(map(str, sys.version_info[:2])); \
assert v == '${PYTHON_VERSION}', f'Python {v}, expected ${PYTHON_VERSION}'; \
assert apache_beam.__version__ == '${BEAM_VERSION}', apache_beam.__version__; \
print('python', v, 'apache-beam', apache_beam.__version__)"

# Workers start through the Beam SDK harness; run the CLI with --entrypoint dptrack-build.
ENTRYPOINT ["/opt/apache/beam/boot"]
