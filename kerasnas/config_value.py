"""Value semantics for small configurable objects (spaces, choice factories)."""


class ConfigValue:
    """Equal, hashed and shown by `get_config()`: two objects of one class
    with one config are the same value; `from_config` rebuilds one."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
