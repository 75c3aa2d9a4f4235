"""``mlops``: the command-line tool GitLab CI jobs call instead of long shell scripts."""
