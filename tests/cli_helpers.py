"""What the command-line tests share."""


def one_error_line(result, *fragments) -> None:
    """Assert ``result`` (a CLI run) failed with exit 2 and one output line holding every fragment."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
