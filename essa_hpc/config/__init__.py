"""The configuration layer: what a run is, checked before anything heavy loads.

Nothing in this package imports torch. ``schema`` holds the dataclasses, YAML and
overrides; ``kinds`` the declaration of every swappable part (search space, strategy,
task, generation backend, baseline, launcher environment) and the plug-in entry
points; the files named after a kind hold its built-in declarations; ``validation``
runs every model-free check. The names below are the public face of ``schema``.
"""
from essa_hpc.config.schema import (
                                    SECTIONS,
                                    BaselineConfig,
                                    CkptConfig,
                                    Config,
                                    ConfigError,
                                    ModelConfig,
                                    RolloutConfig,
                                    RunConfig,
                                    SFTConfig,
                                    SpaceConfig,
                                    StrategyConfig,
                                    TaskConfig,
                                    describe,
                                    from_dict,
                                    from_saved,
                                    load,
                                    non_resumable_keys,
                                    save_yaml,
                                    upgrade_saved,
)

__all__ = ["SECTIONS", "BaselineConfig", "CkptConfig", "Config", "ConfigError", "ModelConfig", "RolloutConfig",
           "RunConfig", "SFTConfig", "SpaceConfig", "StrategyConfig", "TaskConfig", "describe", "from_dict",
           "from_saved", "load", "non_resumable_keys", "save_yaml", "upgrade_saved"]
