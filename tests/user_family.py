"""A user's own family, outside metagym: the code of docs/howto/add-a-family.md, run as this
module (so the test suite checks exactly what the how-to page shows). Importing it registers
``GuessDigit-v0`` with plain ``gymnasium.register``.
"""

import re
from pathlib import Path

_PAGE = Path(__file__).parents[1] / "docs" / "howto" / "add-a-family.md"
exec(re.findall(r"```python\n(.*?)```", _PAGE.read_text(), re.S)[0])
