"""Model families of `music train --arch`: basic (the document's model), lookback, attention. See base.py."""

from app.music.archs.base import ARCHS, Arch, arch_names, folder_arch, get_arch, stepper_for  # noqa: F401
