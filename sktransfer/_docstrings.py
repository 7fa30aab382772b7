"""Shared docstring text, written once and substituted into many docstrings.

The pattern of imbalanced-learn's ``Substitution``: a docstring holds
placeholders such as ``%(random_state)s``; the decorator fills them from
keyword arguments (each value is dedented, stripped and re-indented to the
placeholder's column, so multi-line parameter blocks line up in numpydoc).
This is the package's only docstring-templating mechanism.
"""

from __future__ import annotations

import re
import textwrap

__all__ = ["Substitution"]

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s", re.MULTILINE)


class Substitution:
    r"""Decorator filling ``%(name)s`` placeholders of a docstring.

    Parameters
    ----------
    **params : str
        The text for each placeholder. A placeholder that starts a line is
        replaced with the text indented to its own column; one inside a line
        is replaced verbatim.

    Examples
    --------
    >>> from sktransfer._docstrings import Substitution
    >>> @Substitution(alpha="alpha : float\n    The penalty.")
    ... def f():
    ...     '''Do it.
    ...
    ...     Parameters
    ...     ----------
    ...     %(alpha)s
    ...     '''
    >>> print(f.__doc__.splitlines()[-2])
            The penalty.
    """

    def __init__(self, **params: str):
        self.params = {
            name: textwrap.dedent(value).strip("\n") for name, value in params.items()
        }

    def _fill(self, doc: str) -> str:
        def at_line_start(match):
            name, indent = match["name"], match["indent"]
            if name not in self.params:
                return match[0]
            lines = self.params[name].splitlines()
            return "\n".join(indent + line if line else line for line in lines)

        doc = _PLACEHOLDER.sub(at_line_start, doc)
        for name, value in self.params.items():
            doc = doc.replace(f"%({name})s", value)
        missing = re.findall(r"%\((\w+)\)s", doc)
        if missing:
            raise KeyError(f"docstring placeholders without text: {sorted(missing)}")
        return doc

    def __call__(self, obj):
        if obj.__doc__:
            obj.__doc__ = self._fill(obj.__doc__)
        return obj
