"""adaptau_tf: Adap-τ (WWW 2023) adaptive softmax temperature for TFRS retrieval."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="adaptau_tf",
    version="0.1.0",
    description="Adaptive softmax temperature (Adap-τ) for TensorFlow Recommenders retrieval",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["adaptau_tf", "adaptau_tf.*", "trainers", "export"]),
    install_requires=[
        # Pins from STACK.md: scann 1.4.2's TF op library is built against TF 2.20.
        "tensorflow==2.20.*",
        "tf-keras==2.20.*",
        "tensorflow-recommenders==0.7.7",
        "scann==1.4.2",
        "tensorflow-datasets==4.9.*",
        "keras-tuner==1.4.*",
        "scipy>=1.11",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "psutil>=5.9",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6",
                 # benchmarks/reference_jax.py (tests check it against the package)
                 "jax[cpu]==0.10.2"],
    },
    entry_points={
        "console_scripts": [
            "adaptau-train=trainers.train:main",
            "adaptau-grid-search=trainers.grid_search:main",
            "adaptau-report=trainers.report:main",
            "adaptau-export=export.saved_model:main",
            "adaptau-check-export=export.check:main",
            "adaptau-recommend=export.recommend:main",
        ],
    },
)
