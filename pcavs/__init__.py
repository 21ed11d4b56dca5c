"""pcavs: pose-controllable audio-driven talking faces (PC-AVS) in pure PyTorch."""

__version__ = "0.1.0"
