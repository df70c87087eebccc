import re
from pathlib import Path

import pytest

from edge import config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def write(tmp_path, text):
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_defaults_and_relative_database(tmp_path):
    cfg = config.load(write(tmp_path, 'holder_key = "abc"\ndatabase = "data/edge.db"\n'))
    assert cfg.database == tmp_path / "data" / "edge.db"
    assert cfg.log_level == "INFO"


def test_unknown_key_is_refused_with_its_line_and_name(tmp_path):
    path = write(tmp_path, 'holder_key = "abc"\n\nlog_levle = "DEBUG"\n')
    with pytest.raises(config.ConfigError, match=r"edge.toml:3: unknown setting 'log_levle'"):
        config.load(path)


@pytest.mark.parametrize("text, message", [
    ('database = "x.db"\n', "'holder_key' is required"),
    ('holder_key = 5\n', "holder_key must be a str"),
    ('holder_key = "k"\nlog_level = "LOUD"\n', "log_level must be one of"),
    ('holder_key = "k\n', "not valid TOML"),
    ('holder_key = "k"\nhandheld_offline_max_age_min = -1\n',
     "handheld_offline_max_age_min must be 0 or more"),
    ('holder_key = "k"\nhandheld_offline_max_age_min = "1h"\n',
     "handheld_offline_max_age_min must be a int"),
])
def test_bad_files_get_clear_errors(tmp_path, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(write(tmp_path, text))


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(config.ConfigError, match="wicket-edge init"):
        config.load(tmp_path / "nope.toml")


def test_write_new_is_owner_only_and_never_overwrites(tmp_path):
    path = tmp_path / "etc" / "edge.toml"
    config.write_new(path, {"holder_key": "k1"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.load(path).holder_key == "k1"
    with pytest.raises(FileExistsError):
        config.write_new(path, {"holder_key": "k2"})


def test_docs_list_every_setting():
    documented = set(re.findall(r"^\| `(\w+)` \|", DOCS.read_text(), flags=re.M))
    assert documented == {s.name for s in config.SETTINGS}
