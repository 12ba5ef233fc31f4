"""The option tables and the board's config.json schema (pytest and MicroPython)."""

from checks import raises

from tcpcam.core import camera_settings, device_config
from tcpcam.core.options import Option, OptionTable, parse_size


def test_each_kind_checks_and_says_its_rule():
    cases = (
        (Option("n", 5, "int", 1, 16), 8, 0, "a whole number from 1 to 16"),
        (Option("f", 1.5, "number", 0, 10, unit="s"), 2.5, -1, "a number from 0 to 10 s"),
        (Option("b", False, "bool"), True, "yes", "true or false"),
        (Option("t", "", "text", 0, 3), "abc", "abcd", "text of 0 to 3 characters"),
        (Option("c", "VGA", "choice", choices=("QVGA", "VGA")), "QVGA", "XGA", "one of QVGA, VGA"),
        (Option("p", "1235", "pin", 1, 128), "4711", "12\n3", "1 to 128 characters with no CR, LF or NUL"),
        (Option("a", "0.0.0.0", "ipv4"), "192.168.1.2", "300.1.1.1", "an IPv4 address such as 0.0.0.0"),
    )
    for option, good, bad, rule in cases:
        assert option.check(good) == good
        with raises(ValueError, match=rule):
            option.check(bad)
        assert option.rule() == rule


def test_choices_are_case_insensitive_and_normalised():
    assert Option("c", "VGA", "choice", choices=("QVGA", "VGA")).check("qvga") == "QVGA"


def test_zero_may_mean_off_beside_a_range():
    option = Option("z", 0, "int", 1, 1000, zero=True)
    assert option.check(0) == 0 and option.check(5) == 5
    with raises(ValueError, match="0 or 1 to 1000"):
        option.check(-1)


def test_texts_from_the_command_line():
    assert Option("n", 5, "int", 1, 16).from_text(" 8 ") == 8
    assert Option("f", 1.5, "number", 0, 10).from_text("2.5") == 2.5
    assert Option("b", False, "bool").from_text("on") is True
    assert Option("s", 0, "size", 1, None).from_text("2MiB") == 2 * 1024 * 1024
    keepalive = Option("k", (5, 5, 3), "keepalive")
    assert keepalive.from_text("7,8,9") == (7, 8, 9) and keepalive.from_text("off") is None
    for option, text in ((Option("n", 5, "int", 1, 16), "eight"), (Option("f", 1, "number", 0, 10), "nan"),
                         (keepalive, "5,5"), (keepalive, "5,0,3")):
        with raises(ValueError):
            option.from_text(text)


def test_sizes():
    assert parse_size("1048576") == 1048576
    assert parse_size("500M") == 500 * 10 ** 6
    assert parse_size("1.5GiB") == int(1.5 * 2 ** 30)
    assert parse_size("20g") == 20 * 10 ** 9
    assert parse_size("64 kB") == 64000
    for text in ("", "M", "-5", "5Q", "5i"):
        assert parse_size(text) is None


def test_a_table_merges_with_one_line_per_problem():
    table = OptionTable((Option("a", 1, "int", 0, 9, "first"), Option("b", "x", "text", 1, 5, "second")))
    values, problems = table.merge({"a": 99, "c": 1, "b": "yes"})
    assert values == {"a": 1, "b": "yes"}
    assert problems == ["bad a 99: expected a whole number from 0 to 9", "unknown key 'c'"]
    values, problems = table.parse_texts({"a": "7"})
    assert values["a"] == 7 and problems == []
    assert table.merge([1])[1] == ["expected a table of settings, not [1]"]


def test_the_board_config_never_fails_and_says_what_it_used():
    config, problems = device_config.apply({"quality": 101, "colour": "red", "flip": "yes", "max_clients": 0})
    assert config == device_config.defaults()
    assert "config: bad quality 101: expected a whole number from 1 to 100; using 85" in problems
    assert "config: unknown key 'colour' ignored" in problems
    assert len(problems) == 4


def test_the_board_config_relations():
    config, problems = device_config.apply({"wifi_retry_ms": 5000, "wifi_retry_max_ms": 100, "password": "short"})
    assert config["wifi_retry_max_ms"] == 5000 and config["password"] == ""
    assert len(problems) == 2
    config, problems = device_config.apply({"password": "long enough", "framesize": "svga"})
    assert problems == [] and config["framesize"] == "SVGA"


def test_refusals_drop_what_the_board_would_use():
    assert device_config.refusal("config: bad quality 99: expected x; using 10") == "config: bad quality 99: expected x"
    assert device_config.refusal("config: unknown key 'x' ignored") == "config: unknown key 'x'"


def test_the_quality_percentage_maps_onto_the_sensor_scale_both_ways():
    assert camera_settings.sensor_quality(85) == 10
    assert camera_settings.sensor_quality(100) == 0 and camera_settings.sensor_quality(1) == 63
    for percent in range(1, 101):
        sensor = camera_settings.sensor_quality(percent)
        assert camera_settings.sensor_quality(camera_settings.percent_quality(sensor)) == sensor
    with raises(ValueError):
        camera_settings.sensor_quality(0)
    assert camera_settings.pixels("SVGA") == (800, 600)
    assert camera_settings.SETTINGS["quality"].default == 85
