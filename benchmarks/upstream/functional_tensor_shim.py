"""Make `torchvision.transforms.functional_tensor` importable again.

basicsr 1.4.2 (the last release, used by realesrgan and gfpgan) does
`from torchvision.transforms.functional_tensor import rgb_to_grayscale`; torchvision 0.17
removed that private module. setup_env.sh installs this file into the upstream venv's
site-packages together with a one-line `.pth` file that imports it at interpreter start.

It appends a finder to `sys.meta_path`, so it only answers when the real module is missing
(older torchvision keeps its own), and it imports nothing until the name is asked for. The
module it makes re-exports every name of `torchvision.transforms.functional`, which holds the
same functions (rgb_to_grayscale included) and accepts tensors.
"""

import importlib
import importlib.abc
import importlib.util
import sys

ALIAS = "torchvision.transforms.functional_tensor"
TARGET = "torchvision.transforms.functional"


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None  # a fresh, empty module

    def exec_module(self, module):
        target = importlib.import_module(TARGET)
        module.__dict__.update(
            (name, value) for name, value in vars(target).items() if not name.startswith("__")
        )


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader())


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.append(_AliasFinder())
