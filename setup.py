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
    # trainers/ and export/ live at the repository's top level but install inside the
    # package's namespace (adaptau_tf.trainers, adaptau_tf.export): nothing generic
    # such as `export` lands in site-packages.
    packages=[*find_packages(include=["adaptau_tf", "adaptau_tf.*"]),
              "adaptau_tf.trainers", "adaptau_tf.export"],
    package_dir={"adaptau_tf.trainers": "trainers", "adaptau_tf.export": "export"},
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
        "test": ["pytest>=8", "pytest-xdist>=3.5", "ruff>=0.6"],
        # The paper's reproduction (reproduction/, outside the package): the JAX port
        # of the reference code that its tests check against the package.
        "reproduction": ["jax[cpu]==0.10.2"],
    },
    entry_points={
        "console_scripts": [
            "adaptau-train=adaptau_tf.trainers.train:main",
            "adaptau-grid-search=adaptau_tf.trainers.grid_search:main",
            "adaptau-report=adaptau_tf.trainers.report:main",
            "adaptau-export=adaptau_tf.export.saved_model:main",
            "adaptau-export-two-tower=adaptau_tf.export.two_tower:main",
            "adaptau-check-export=adaptau_tf.export.check:main",
            "adaptau-recommend=adaptau_tf.export.recommend:main",
        ],
    },
)
