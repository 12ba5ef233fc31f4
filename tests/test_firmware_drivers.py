"""Both camera drivers under the real unix MicroPython: the stand-ins against the drivers' APIs, the mapping tables.

The stand-ins (``firmware/simulator/camera.py`` for lemariva's driver,
``firmware/simulator/camera_api/camera.py`` for cnadler86's) are called here
exactly as the drivers' sources say the real ones behave; the adapter layer
(``tcpcam_fw.camera_drivers``) is then checked against both, for every value
of every user setting.
"""

import json

import pytest
from firmware_support import Firmware, fetch_raw, needs_micropython, run_micropython, write_jpegs

from tcpcam.board import simulate as firmware_simulate
from tcpcam.core.camera_settings import EFFECTS, FRAMESIZE_NAMES, WHITEBALANCES

pytestmark = needs_micropython

#: lemariva's FRAME_* numbers (esp32-camera 2.0.5) of the user frame sizes.
LEMARIVA_FRAMES = {"240X240": 4, "QVGA": 5, "CIF": 6, "HVGA": 7, "VGA": 8, "SVGA": 9, "XGA": 10, "HD": 11,
                   "SXGA": 12, "UXGA": 13}
#: cnadler86's FrameSize numbers (its esp32-camera fork has 128X128 and 320X320 inserted).
CAMERA_API_FRAMES = {"240X240": 5, "QVGA": 6, "CIF": 8, "HVGA": 9, "VGA": 10, "SVGA": 11, "XGA": 12, "HD": 13,
                     "SXGA": 14, "UXGA": 15}
#: esp32-camera's special effect and white balance numbers (both drivers).
EFFECT_NUMBERS = {"none": 0, "negative": 1, "grayscale": 2, "red": 3, "green": 4, "blue": 5, "sepia": 6}
WB_NUMBERS = {"auto": 0, "sunny": 1, "cloudy": 2, "office": 3, "home": 4}


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A bundle folder to run scripts in, with three distinct frames."""
    work = tmp_path_factory.mktemp("drivers")
    write_jpegs(work / "frames", 3, 2000)
    return firmware_simulate.prepare(work, {"source": "hello"})


def run(device, script, driver="lemariva", env=None):
    environment = {"TCPCAM_CAMERA_DIR": str(device.parent / "frames")}
    environment.update(env or {})
    result = run_micropython(script, device, environment, driver=driver)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines(), result.stderr.splitlines()


REPORT = """
def report(call):
    try:
        print(repr(call()))
    except Exception as error:
        print(type(error).__name__, error)
"""


def test_lemariva_stand_in_argument_errors(device):
    lines, _ = run(device, REPORT + """
import camera
report(lambda: camera.init())
report(lambda: camera.init(0, 1))
report(lambda: camera.init(0, colour=1))
report(lambda: camera.init(0, fb_size="2"))
report(lambda: camera.capture(1))
report(lambda: camera.deinit())
""")
    assert lines == [
        "TypeError function missing 1 required positional arguments",
        "TypeError extra positional arguments given",
        "TypeError extra keyword arguments given",
        "TypeError can't convert str to int",
        "TypeError function takes 0 positional arguments but 1 were given",
        "False",
    ]


def test_camera_api_stand_in_matches_the_driver(device):
    lines, errors = run(device, REPORT + """
import camera
from camera import Camera, FrameSize, PixelFormat, GrabMode, GainCeiling
print(sorted(name for name in dir(camera) if not name.startswith("_") and name != "state"))
cam = Camera(pixel_format=PixelFormat.JPEG, frame_size=FrameSize.VGA, fb_count=2, grab_mode=GrabMode.LATEST)
print(cam, cam.fb_count, cam.grab_mode, cam.pixel_width, cam.pixel_height, cam.quality, cam.max_frame_size)
view = cam.capture()
print(type(view).__name__, len(view), view[0], view[1], view[-2], view[-1])
report(lambda: setattr(cam, "brightness", 3))
report(lambda: setattr(cam, "special_effect", 7))
report(lambda: setattr(cam, "wb_mode", 5))
report(lambda: setattr(cam, "sharpness", 0))
report(lambda: setattr(cam, "fb_count", 1))
report(lambda: setattr(cam, "whitebalance", 1))
report(lambda: cam.jpeg_quality)
cam.frame_size = FrameSize.QSXGA
print(cam.frame_size, cam.frame_available())
print(Camera() is cam, cam.pixel_format, cam.frame_size)
cam.deinit()
report(lambda: cam.capture())
report(lambda: cam.quality)
report(lambda: setattr(cam, "vflip", True))
report(lambda: cam.get_quality())
report(lambda: cam.get_fb_count())
report(lambda: cam.init())
print(cam.quality, cam.fb_count)
report(lambda: Camera(0))
report(lambda: Camera(colour=1))
report(lambda: Camera(data_pins=(5, 18, 19, 21, 36, 39, 34, 35)))
report(lambda: Camera(data_pins=[5, 18]))
report(lambda: Camera(jpeg_quality=101))
report(lambda: Camera(grab_mode=2))
report(lambda: Camera(pixel_format=9))
report(lambda: Camera(xclk_freq=41000000))
report(lambda: Camera(i2c=1))
print(Camera(fb_count=3, pixel_format=PixelFormat.JPEG).fb_count, getattr(GainCeiling, "2X"), GainCeiling.__name__)
later = Camera(pixel_format=PixelFormat.JPEG, init=False)
report(lambda: later.quality)
""", driver="cnadler86")
    assert lines == [
        "['Camera', 'FrameSize', 'GainCeiling', 'GrabMode', 'PixelFormat']",
        "Camera with sensor OV2640 2 1 640 480 85 15",
        "memoryview 2000 -1 -40 -1 -39",
        "ValueError Invalid setting for brightness",
        "ValueError Invalid setting for special_effect",
        "ValueError Invalid setting for wb_mode",
        "ValueError Invalid setting for sharpness",
        "ValueError read-only property",
        "AttributeError 'Camera' object has no attribute 'whitebalance'",
        "AttributeError 'Camera' object has no attribute 'jpeg_quality'",
        "15 True",
        "True 0 1",
        "OSError [Errno 2] ENOENT",
        "AttributeError 'Camera' object has no attribute 'quality'",
        "AttributeError 'Camera' object has no attribute 'vflip'",
        "OSError [Errno 2] ENOENT",
        "1",
        "None",
        "85 1",
        "TypeError extra positional arguments given",
        "TypeError extra keyword arguments given",
        "TypeError data_pins must be a list or bytearray",
        "ValueError data_pins must have 8 elements",
        "ValueError jpeg quality must be in range 0-100",
        "ValueError Invalid grab_mode",
        "ValueError Invalid pixel_format",
        "ValueError xclk frequency cannot be grather than 40MHz",
        "TypeError i2c must be a machine.I2C object",
        "2 0 GainCeiling",
        "AttributeError 'Camera' object has no attribute 'quality'",
    ]
    assert errors == [
        "Warning: Frame size will be scaled down to maximal frame size supported by the camera sensor",
        "Warning: Frame buffer size limited to 2",
    ]


def test_camera_api_view_is_only_valid_until_the_buffer_goes_back(device):
    lines, _ = run(device, """
from camera import Camera, PixelFormat
cam = Camera(pixel_format=PixelFormat.JPEG)
view = cam.capture()
before = bytes(view)
cam.free_buffer()
print(bytes(view) == before, len(cam.capture()))
print(cam.capture() is None, cam.capture() is None)
""", driver="cnadler86", env={"TCPCAM_CAMERA_FAIL": "3"})
    # One buffer, given back: the driver wrote the next frame into it.
    assert lines == ["False 2000", "True False"]


def test_camera_api_fails_its_first_frame(device):
    lines, _ = run(device, REPORT + """
from camera import Camera, PixelFormat
report(lambda: Camera(pixel_format=PixelFormat.JPEG))
""", driver="cnadler86", env={"TCPCAM_CAMERA_FAIL": "all"})
    assert lines == ["OSError Failed to capture initial frame. Construct a new object with appropriate configuration."]
    lines, _ = run(device, """
from camera import Camera, PixelFormat
try:
    Camera(pixel_format=PixelFormat.JPEG)
except OSError as error:
    print(error.errno, error.args)
print(type(Camera(pixel_format=PixelFormat.JPEG).capture()).__name__)
""", driver="cnadler86", env={"TCPCAM_CAMERA_INIT_FAIL": "1"})
    # check_esp_err: errno -ESP_ERR_NOT_FOUND and the error's name; the next init works.
    assert lines[-2:] == ["-261 (-261, 'ESP_ERR_NOT_FOUND')", "memoryview"]


MAPPING = """
import json
import camera
from tcpcam.core import device_config
from tcpcam.core.camera_settings import SETTINGS
from tcpcam_fw import camera_drivers
defaults = {option.name: option.default for option in SETTINGS.options}
for psram in (False, True):
    driver = camera_drivers.detect(camera, psram)
    driver.start(defaults)
    print(json.dumps({"driver": driver.name, "started": START}))
    driver.stop()
driver = camera_drivers.detect(camera, True)
driver.start(defaults)
seen = {}
for option in SETTINGS.options:
    values = option.choices or ((False, True) if option.kind == "bool" else range(option.low, option.high + 1))
    for value in values:
        settings = dict(defaults)
        settings[option.name] = value
        driver.apply(settings)
        seen["%s=%s" % (option.name, json.dumps(value))] = READ
print(json.dumps(seen))
"""

LEMARIVA_START = '{key: camera.state["settings"][key] for key in ("format", "framesize", "quality", "fb_size", ' \
    '"fb_location")}'
LEMARIVA_READ = 'dict(camera.state["settings"])'
CAMERA_API_START = '{"pixel_format": driver.camera.pixel_format, "frame_size": driver.camera.frame_size, ' \
    '"quality": driver.camera.quality, "fb_count": driver.camera.fb_count, "grab_mode": driver.camera.grab_mode}'
CAMERA_API_READ = '{name: getattr(driver.camera, name) for name in ("frame_size", "quality", "brightness", ' \
    '"contrast", "saturation", "vflip", "hmirror", "special_effect", "wb_mode")}; ' \
    'seen["%s=%s" % (option.name, json.dumps(value))]["sensor_quality"] = camera.state["sensor"]["sensor_quality"]'


def mapping(device, driver, start, read):
    script = MAPPING.replace("START", start).replace("seen[\"%s=%s\" % (option.name, json.dumps(value))] = READ",
                                                     "seen[\"%s=%s\" % (option.name, json.dumps(value))] = " + read)
    lines, _ = run(device, script, driver=driver)
    found = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in found if "driver" in entry], found[-1]


def sensor_scale(percent):
    """The 0-63 sensor quality (lower is better) of a percentage, as both drivers compute it."""
    return 63 - (63 * percent) // 100


def test_sensor_scale_examples():
    # The notes' table of cnadler86's map(q, 0, 100, 63, 0): 85 is the original firmware's 10.
    assert [sensor_scale(percent) for percent in (1, 10, 50, 70, 75, 80, 81, 83, 85, 90, 95, 100)] == [
        63, 57, 32, 19, 16, 13, 12, 11, 10, 7, 4, 0]


def test_lemariva_mapping_of_every_setting(device):
    starts, seen = mapping(device, "lemariva", LEMARIVA_START, LEMARIVA_READ)
    assert starts == [
        {"driver": "lemariva micropython-camera-driver",
         "started": {"format": 4, "framesize": 8, "quality": 10, "fb_size": 1, "fb_location": 1}},
        {"driver": "lemariva micropython-camera-driver",
         "started": {"format": 4, "framesize": 8, "quality": 10, "fb_size": 2, "fb_location": 0}},
    ]
    for name in FRAMESIZE_NAMES:
        assert seen["framesize=%s" % json.dumps(name)]["framesize"] == LEMARIVA_FRAMES[name]
    for percent in range(1, 101):
        assert seen["quality=%d" % percent]["quality"] == sensor_scale(percent)
    for key in ("brightness", "contrast", "saturation"):
        for level in range(-2, 3):
            assert seen["%s=%d" % (key, level)][key] == level
    for value in (False, True):
        assert seen["flip=%s" % json.dumps(value)]["flip"] == int(value)
        assert seen["mirror=%s" % json.dumps(value)]["mirror"] == int(value)
        assert seen["flip=%s" % json.dumps(value)]["mirror"] == 0
    for name in EFFECTS:
        assert seen["effect=%s" % json.dumps(name)]["speffect"] == EFFECT_NUMBERS[name]
    for name in WHITEBALANCES:
        assert seen["whitebalance=%s" % json.dumps(name)]["whitebalance"] == WB_NUMBERS[name]
    assert len(seen) == len(FRAMESIZE_NAMES) + 100 + 15 + 4 + len(EFFECTS) + len(WHITEBALANCES)


def test_camera_api_mapping_of_every_setting(device):
    starts, seen = mapping(device, "cnadler86", CAMERA_API_START, CAMERA_API_READ)
    assert starts == [
        {"driver": "cnadler86 micropython-camera-API",
         "started": {"pixel_format": 4, "frame_size": 10, "quality": 85, "fb_count": 1, "grab_mode": 0}},
        {"driver": "cnadler86 micropython-camera-API",
         "started": {"pixel_format": 4, "frame_size": 10, "quality": 85, "fb_count": 2, "grab_mode": 1}},
    ]
    for name in FRAMESIZE_NAMES:
        assert seen["framesize=%s" % json.dumps(name)]["frame_size"] == CAMERA_API_FRAMES[name]
    for percent in range(1, 101):
        read = seen["quality=%d" % percent]
        assert (read["quality"], read["sensor_quality"]) == (percent, sensor_scale(percent))
    for key in ("brightness", "contrast", "saturation"):
        for level in range(-2, 3):
            assert seen["%s=%d" % (key, level)][key] == level
    for value in (False, True):
        assert seen["flip=%s" % json.dumps(value)]["vflip"] is value
        assert seen["mirror=%s" % json.dumps(value)]["hmirror"] is value
        assert seen["flip=%s" % json.dumps(value)]["hmirror"] is False
    for name in EFFECTS:
        assert seen["effect=%s" % json.dumps(name)]["special_effect"] == EFFECT_NUMBERS[name]
    for name in WHITEBALANCES:
        assert seen["whitebalance=%s" % json.dumps(name)]["wb_mode"] == WB_NUMBERS[name]


def test_detect_refuses_an_unknown_camera_module(device):
    lines, _ = run(device, """
from tcpcam.core import device_config
from tcpcam_fw import camera_drivers, sources
class Other:
    pass
print(camera_drivers.detect(Other(), True))
source = sources.CameraSource(device_config.defaults(), camera_module=Other())
print(source.start(), source.capture())
""")
    assert lines[0] == "None"
    assert lines[-1] == "False False"
    assert sum("neither lemariva's nor cnadler86's" in line for line in lines) == 1


SOURCE = """
import camera
from tcpcam.core import device_config
from tcpcam_fw import sources
config = device_config.defaults()
config.update(framesize="SVGA", quality=50, effect="sepia", whitebalance="cloudy", flip=True)
source = sources.CameraSource(config, psram=True)
print(source.start())
"""


@pytest.mark.parametrize(("driver", "read"), [
    ("lemariva", 'camera.state["settings"]["framesize"], camera.state["settings"]["quality"], '
                 'camera.state["settings"]["speffect"], camera.state["settings"]["whitebalance"], '
                 'camera.state["settings"]["flip"]'),
    ("cnadler86", "source.driver.camera.frame_size, source.driver.camera.quality, "
                  "source.driver.camera.special_effect, source.driver.camera.wb_mode, int(source.driver.camera.vflip)"),
])
def test_settings_apply_at_start_and_on_change(device, driver, read):
    lines, _ = run(device, SOURCE + """
print(%(read)s)
print(source.apply({"framesize": "qvga", "quality": 0, "colour": "red"}))
print(%(read)s)
print(type(source.capture()).__name__)
""" % {"read": read}, driver=driver)
    frames = LEMARIVA_FRAMES if driver == "lemariva" else CAMERA_API_FRAMES
    sensor = sensor_scale(50) if driver == "lemariva" else 50
    assert printed(lines) == [
        "True", "%d %d 6 2 1" % (frames["SVGA"], sensor),
        "[\"camera: unknown key 'colour'\", 'camera: bad quality 0: expected a whole number from 1 to 100']",
        "%d %d 6 2 1" % (frames["QVGA"], sensor), "bytes"]
    assert said(lines)[-1] == "settings applied: QVGA, quality 50%"


def said(lines):
    """The console lines of the firmware (``say``), without their time stamps."""
    return [line.split(" camera: ", 1)[1] for line in lines if " camera: " in line]


def printed(lines):
    """The lines the script printed itself."""
    return [line for line in lines if " camera: " not in line]


def test_camera_api_frames_are_copied_unless_the_server_releases_them(device):
    lines, _ = run(device, SOURCE + """
state = camera.state
frame = source.capture()
print(type(frame).__name__, len(frame), state["held"], state["frees"])
source.lend_frames = True
view = source.capture()
kept = bytes(view)
print(type(view).__name__, source.lends, state["held"] is not None)
source.apply({"framesize": "QVGA"})
print(source.driver.camera.frame_size)
source.release()
print(state["held"], source.driver.camera.frame_size, bytes(view) == kept)
second = source.capture()
kept = bytes(second)
third = source.capture()
print(bytes(second) == kept, state["frees"])
""", driver="cnadler86")
    assert printed(lines) == [
        "True",
        "bytes 2000 None 1",  # a copy; the driver's buffer went back at once
        "memoryview True True",  # lent: the view is into the held buffer
        "11",  # still SVGA: settings wait until the lent frame is released
        "None 6 False",  # released: QVGA now, and the driver wrote another frame into the old view's buffer
        "False 3",  # a capture gives the previous lent frame back first
    ]
    assert said(lines)[-1] == "settings applied: QVGA, quality 50%"


@pytest.mark.parametrize(("driver", "heapsize", "expected"), [
    ("cnadler86", None, "with cnadler86 micropython-camera-API, 2 frame buffers in PSRAM, grab latest"),
    ("lemariva", None, "with lemariva micropython-camera-driver, 2 frame buffers in PSRAM, grab when empty"),
    ("lemariva", "320k", "with lemariva micropython-camera-driver, 1 frame buffer in DRAM, grab when empty"),
])
def test_firmware_serves_through_either_driver(tmp_path, driver, heapsize, expected):
    frames = write_jpegs(tmp_path / "frames", 3, 3000)
    with Firmware(tmp_path / "fw", {"interval_ms": 10}, frames_dir=tmp_path / "frames", driver=driver,
                  heapsize=heapsize) as firmware:
        assert expected in firmware.wait_for("camera: started")
        received = fetch_raw(firmware.port, [b"1235\n6\n"])
    assert len(received) == 6
    assert set(received) <= set(frames)
    assert len(set(received)) > 1
