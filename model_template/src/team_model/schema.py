"""What the example model sees: one endpoint process-start event, summarised as numbers.

Every feature is numeric (flags are 0/1) so a request can be a JSON object, a JSON list or a CSV row
in this order. Counts are observed during the first 60 seconds of the process's life.
"""

PROBLEM_TYPE = "classification"

FEATURES = (
    "cmdline_length",  # characters in the command line
    "cmdline_entropy",  # Shannon entropy of the command line, bits per character
    "encoded_command",  # 1 if the command line carries an encoded/base64 payload
    "parent_is_office",  # 1 if the parent process is an Office application or a browser
    "image_signed",  # 1 if the executable is signed by a trusted publisher
    "runs_from_user_writable",  # 1 if the executable lives in a temp, downloads or profile folder
    "child_processes",  # child processes started
    "network_connections",  # outbound connections opened
    "distinct_remote_ports",  # distinct remote ports contacted
    "registry_writes",  # writes to autorun/persistence registry keys
    "files_written",  # files created or modified
    "hour_of_day",  # local hour the process started, 0-23
)

LABEL = "label"
CLASSES = ("benign", "malicious")
POSITIVE_CLASS = "malicious"
