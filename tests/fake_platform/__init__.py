"""A local fake of Telegram, X, Facebook's Graph API and Discourse, for testing channel plugins for real."""

from tests.fake_platform.server import FakePlatform, running_fake_platform
from tests.fake_platform.state import Fault, Recorded

__all__ = ["FakePlatform", "Fault", "Recorded", "running_fake_platform"]
