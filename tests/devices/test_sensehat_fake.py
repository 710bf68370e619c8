"""The sense-hat driver through the real `sense_hat` library, on a faked board.

Theory of operation. Each test runs one scenario in a child process started as root under
`unshare --mount --propagation private`, so every mount it makes disappears with it. The child
(`main` below, this file run as a script) builds what sense_hat and its joystick class look for:

    /sys/class/graphics/fb0/name            "vc4drmfb" (a decoy)     tmpfs over /sys/class
    /sys/class/graphics/fb1/name            "RPi-Sense FB"
    /sys/class/input/event0/device/name     "Raspberry Pi Sense HAT Joystick"
    /dev/fb1                                the LED memory, root:video 0660   tmpfs over /dev
    /dev/i2c-1                              only globbed by sense_hat
    /dev/input/event0                       a FIFO, root:input 0660; the child holds its write end
    /etc/passwd                             a user "bridge" whose home is /home/bridge (tmpfs /home)

then drops to uid 4242 with the groups the scenario names, and opens the device. Python stands in
where a file cannot: `RTIMU` (RTIMULib's binding, absent off a Pi) is a stub module whose sensors
give fixed readings, and the three gamma ioctls of the Sense HAT framebuffer driver are answered
by a wrapper around `fcntl.ioctl` for /dev/fb1. When a scenario writes pixels, /dev/fb1 is a loop
block device over a 4 KiB file: like the real framebuffer, and unlike a regular file, it ignores
the O_TRUNC of sense_hat's `open(..., 'wb')`, so one set_pixel leaves the other 63 pixels alone.
"""

from __future__ import annotations

import array
import errno
import fcntl
import importlib.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
USER, UID, HOME = "bridge", 4242, "/home/bridge"
GROUPS = {"video": 44, "input": 105, "i2c": 998}  # Raspberry Pi OS's numbers; only the numbers matter
ALL_GROUPS = ["video", "input", "i2c"]
FRAMEBUFFER, JOYSTICK = "/dev/fb1", "/dev/input/event0"

# The rpisense-fb driver's ioctls (sense_hat.SenseHat.SENSE_HAT_FB_FBIO*_GAMMA) and its tables.
FBIOGET_GAMMA, FBIOSET_GAMMA, FBIORESET_GAMMA = 61696, 61697, 61698
GAMMA_DEFAULT = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 17, 18, 20, 21, 23, 25, 27, 29, 31]
GAMMA_LOW = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 10]

# RTIMULib's Python binding as sense_hat uses it. FAKE_RTIMU_FAIL names an init that reports failure.
RTIMU_STUB = '''
import os

FAIL = os.environ.get("FAKE_RTIMU_FAIL", "")


class Settings:
    def __init__(self, path):
        self.path = path


class RTIMU:
    def __init__(self, settings):
        self.enabled = {}

    def IMUInit(self):
        return FAIL != "IMUInit"

    def IMUGetPollInterval(self):
        return 3

    def setCompassEnable(self, on):
        self.enabled["compass"] = on

    def setGyroEnable(self, on):
        self.enabled["gyro"] = on

    def setAccelEnable(self, on):
        self.enabled["accel"] = on

    def IMURead(self):
        return True

    def getIMUData(self):
        return {
            "fusionPoseValid": True, "fusionPose": (0.1, 0.2, 0.3),
            "accelValid": True, "accel": (0.01, -0.02, 0.98),
            "gyroValid": True, "gyro": (0.001, 0.002, -0.003),
            "compassValid": True, "compass": (12.5, -3.25, 40.0),
        }


class RTPressure:
    def __init__(self, settings):
        pass

    def pressureInit(self):
        return FAIL != "pressureInit"

    def pressureRead(self):
        return (True, 1013.25, True, 21.5)


class RTHumidity:
    def __init__(self, settings):
        pass

    def humidityInit(self):
        return FAIL != "humidityInit"

    def humidityRead(self):
        return (True, 45.5, True, 22.25)
'''


# -- the child: build the board, drop privileges, run the scenario -----------------------------


def _mount_tmpfs(path: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "fake-sense-hat", path], check=True)


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def _device_node(path: str, group: str) -> None:
    os.chown(path, 0, GROUPS[group])
    os.chmod(path, 0o660)


def _make_reachable(path: str, stashes: dict[str, str]) -> None:
    """Let the unprivileged user reach `path` (e.g. Python under root's 0700 home), in this namespace only.

    The first closed directory on the way gets a tmpfs over it holding just the next step, bound
    from a stash of the original; then the walk goes on from there.
    """
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        directory = os.path.join(*parts[:depth])
        if directory not in stashes and os.stat(directory).st_mode & 0o001:
            continue
        if directory not in stashes:
            stashes[directory] = stash = f"/dev/.stash/{len(stashes)}"
            os.makedirs(stash)
            subprocess.run(["mount", "--bind", directory, stash], check=True)
            _mount_tmpfs(directory)
        step = os.path.join(directory, parts[depth])
        if not os.path.lexists(step):
            original = os.path.join(stashes[directory], parts[depth])
            if os.path.isdir(original):
                os.mkdir(step)
            else:
                open(step, "w").close()
            subprocess.run(["mount", "--bind", original, step], check=True)


def _build_board(scenario: dict) -> int:
    """Mount the fake board (see the module docstring); the joystick FIFO's write end, or -1."""
    _mount_tmpfs("/sys/class")
    _write("/sys/class/graphics/fb0/name", "vc4drmfb\n")
    if scenario.get("framebuffer", "file") != "absent":
        _write("/sys/class/graphics/fb1/name", "RPi-Sense FB\n")
    if scenario.get("joystick", True):
        _write("/sys/class/input/event0/device/name", "Raspberry Pi Sense HAT Joystick\n")

    _mount_tmpfs("/dev")
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        os.mknod(f"/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        os.chmod(f"/dev/{name}", 0o666)
    os.symlink("/proc/self/fd", "/dev/fd")
    _write("/dev/fb0", "")
    loop = scenario.get("loop")
    if loop is not None:
        os.mknod(FRAMEBUFFER, 0o660 | stat.S_IFBLK, os.makedev(*loop))
    elif scenario.get("framebuffer", "file") != "absent":
        _write(FRAMEBUFFER, "\0" * 128)
    if os.path.exists(FRAMEBUFFER):
        _device_node(FRAMEBUFFER, "video")
        os.chmod(FRAMEBUFFER, int(scenario.get("framebuffer_mode", "660"), 8))
    if scenario.get("i2c", True):
        _write("/dev/i2c-1", "")
        _device_node("/dev/i2c-1", "i2c")
    os.makedirs("/dev/input")
    os.mkfifo(JOYSTICK)
    _device_node(JOYSTICK, "input")
    # Held open for writing so that sense_hat's open for reading does not wait for a writer.
    stick = os.open(JOYSTICK, os.O_RDWR | os.O_NONBLOCK)

    stashes: dict[str, str] = {}
    for needed in (sys.base_prefix, sys.prefix, str(REPOSITORY)):
        _make_reachable(needed, stashes)

    _mount_tmpfs("/home")
    if scenario.get("home", True):
        os.mkdir(HOME)
        os.chown(HOME, UID, UID)
    _write("/home/.passwd", f"root:x:0:0:root:/root:/bin/sh\n{USER}:x:{UID}:{UID}::{HOME}:/usr/sbin/nologin\n")
    subprocess.run(["mount", "--bind", "/home/.passwd", "/etc/passwd"], check=True)
    _write("/home/config.yml", (REPOSITORY / "configs" / "minimal.yml").read_text())
    _write("/home/.stubs/RTIMU.py", RTIMU_STUB)
    return stick


GAMMA = list(GAMMA_DEFAULT)  # the fake framebuffer driver's gamma table


def _fake_gamma_ioctls() -> None:
    """Answer the framebuffer driver's gamma ioctls for /dev/fb1, which a file cannot."""
    real_ioctl = fcntl.ioctl
    framebuffer = os.stat(FRAMEBUFFER)
    gamma = GAMMA

    def ioctl(fd, request, arg=0, mutate_flag=True):
        number = fd if isinstance(fd, int) else fd.fileno()
        found = os.fstat(number)
        if request in (FBIOGET_GAMMA, FBIOSET_GAMMA, FBIORESET_GAMMA) and (found.st_dev, found.st_ino) == (
            framebuffer.st_dev, framebuffer.st_ino
        ):
            if request == FBIOGET_GAMMA:
                arg[:] = array.array("B", gamma)
            elif request == FBIOSET_GAMMA:
                gamma[:] = list(arg)
            else:
                gamma[:] = GAMMA_LOW if arg == 1 else GAMMA_DEFAULT
            return 0
        return real_ioctl(fd, request, arg, mutate_flag)

    fcntl.ioctl = ioctl


def _press(stick: int, code: int, value: int) -> None:
    os.write(stick, struct.pack("llHHI", 0, 0, 0x01, code, value))  # EV_KEY, as the evdev driver writes


def _happy_path(stick: int) -> dict:
    from bridge.config.model import DeviceConfig
    from bridge.devices import open_device

    device = open_device(DeviceConfig(id="pi", driver="sense-hat", low_light=True))
    with tempfile.NamedTemporaryFile("w", suffix=".temp", delete=False) as zone:
        zone.write("48123\n")  # millidegrees, as the thermal driver writes them
    device.thermal_zone = zone.name
    try:
        device.clear((0, 0, 0))
        device.set_pixel(1, 0, (255, 0, 0))
        device.set_pixel(7, 7, (10, 200, 30))
        _press(stick, 103, 1)  # KEY_UP pressed
        _press(stick, 28, 0)  # KEY_ENTER released
        return {
            "pixels": device.get_pixels(),
            "snapshot": [list(colour) for colour in device.snapshot()],
            "low_light": device.low_light,
            "gamma_is_low": GAMMA == GAMMA_LOW,
            "readings": {sensor: device.read(sensor) for sensor in (
                "temperature", "humidity", "pressure", "orientation", "accelerometer", "gyroscope", "compass"
            )},
            "compensation_inputs": device.read_many(
                ("temperature_from_humidity", "temperature_from_pressure", "cpu_temperature")),
            "joystick": device.poll_joystick(),
        }
    finally:
        device.close()


def _board_files_open() -> list[str]:
    """The board's device files this process still has open (besides the joystick's write end)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the descriptor listdir itself used
            pass
    return sorted(target for target in targets if target == FRAMEBUFFER) + sorted(
        target for target in targets if target == JOYSTICK
    )[1:]


def _open(_stick: int) -> dict:
    from bridge.config.model import DeviceConfig
    from bridge.devices import DeviceUnavailable, open_device

    try:
        open_device(DeviceConfig(id="pi", driver="sense-hat")).close()
    except DeviceUnavailable as error:
        return {"unavailable": str(error), "suppressed": error.__suppress_context__, "left_open": _board_files_open()}
    except BaseException as error:
        return {"escaped": "".join(traceback.format_exception(error))}
    return {"opened": True}


def _run(_stick: int) -> dict:
    import bridge.cli.main

    return {"exit": bridge.cli.main.main(["run", "/home/config.yml"])}


def main(scenario: dict) -> None:
    stick = _build_board(scenario)
    sys.path.insert(0, "/home/.stubs")
    os.environ["FAKE_RTIMU_FAIL"] = scenario.get("rtimu_fail", "")
    if os.path.exists(FRAMEBUFFER):
        _fake_gamma_ioctls()
    os.setgroups([GROUPS[name] for name in scenario.get("groups", ALL_GROUPS)])
    os.setgid(UID)
    os.setuid(UID)
    result = {"happy": _happy_path, "open": _open, "run": _run}[scenario["action"]](stick)
    print(json.dumps(result))


# -- the tests -----------------------------------------------------------------------------------


def _why_not() -> str | None:
    if importlib.util.find_spec("sense_hat") is None:
        return "the sense-hat library is not installed (pip install -e '.[dev]')"
    if os.geteuid() != 0:
        return "faking the Sense HAT's device files takes root (mounts in a private mount namespace)"
    if shutil.which("unshare") is None:
        return "no unshare(1) to make a private mount namespace"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a private mount namespace here: {probe.stderr.strip()}"
    return None


REASON = _why_not()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture
def board():
    """run(action, **scenario) -> the child's result, its stderr text."""

    def run(action: str, **scenario) -> tuple[dict, str]:
        scenario.update(action=action)
        child = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", sys.executable, __file__, json.dumps(scenario)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )
        assert child.returncode == 0, child.stderr
        return json.loads(child.stdout.splitlines()[-1]), child.stderr

    return run


class LoopDevice:
    """A loop block device over a file, detached by the kernel when the last holder closes it."""

    LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LO_FLAGS_AUTOCLEAR = 0x4C82, 0x4C0A, 4

    def __init__(self, backing: Path):
        self.backing = backing
        self._file = os.open(backing, os.O_RDWR)
        control = os.open("/dev/loop-control", os.O_RDWR)
        try:
            for _attempt in range(10):  # another process may take the free device first
                number = fcntl.ioctl(control, self.LOOP_CTL_GET_FREE)
                self.fd = os.open(f"/dev/loop{number}", os.O_RDWR)
                # struct loop_config: fd, block_size, loop_info64 (lo_flags at offset 52), reserved
                config = bytearray(304)
                struct.pack_into("II", config, 0, self._file, 0)
                struct.pack_into("I", config, 8 + 52, self.LO_FLAGS_AUTOCLEAR)
                try:
                    fcntl.ioctl(self.fd, self.LOOP_CONFIGURE, bytes(config))
                    break
                except OSError as error:
                    os.close(self.fd)
                    if error.errno != errno.EBUSY:
                        raise
            else:
                raise OSError(errno.EBUSY, "no free loop device")
        finally:
            os.close(control)
        device = os.fstat(self.fd).st_rdev
        self.numbers = [os.major(device), os.minor(device)]

    def contents(self) -> bytes:
        os.fsync(self.fd)  # through the loop driver into the backing file
        return self.backing.read_bytes()

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._file)


@pytest.fixture
def loop_device(tmp_path):
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control: the fake framebuffer is a loop device (a file would be truncated)")
    backing = tmp_path / "framebuffer"
    backing.write_bytes(bytes(4096))
    try:
        loop = LoopDevice(backing)
    except OSError as error:
        pytest.skip(f"cannot set up a loop device for the fake framebuffer: {error}")
    yield loop
    loop.close()


def rgb565(red: int, green: int, blue: int) -> bytes:
    return struct.pack("=H", (red >> 3) << 11 | (green >> 2) << 5 | blue >> 3)


def test_the_happy_path_end_to_end(board, loop_device):
    result, _ = board("happy", loop=loop_device.numbers)

    framebuffer = loop_device.contents()
    assert framebuffer[2:4] == rgb565(255, 0, 0) == b"\x00\xf8"  # pixel (1, 0), little-endian RGB565
    assert framebuffer[126:128] == rgb565(10, 200, 30)  # pixel (7, 7)
    assert framebuffer[:2] + framebuffer[4:126] == bytes(124)  # set_pixel kept the cleared rest
    expected = [[0, 0, 0]] * 64
    expected[1], expected[63] = [248, 0, 0], [8, 200, 24]  # RGB565 quantises
    assert result["pixels"] == result["snapshot"] == expected
    assert result["low_light"] is True and result["gamma_is_low"]
    readings = result["readings"]
    assert readings["temperature"] == [22.25, "°C"]  # the library reads it from the humidity sensor
    assert readings["humidity"] == [45.5, "%RH"]
    assert readings["pressure"] == [1013.25, "hPa"]
    assert readings["orientation"] == [{"roll": 5.73, "pitch": 11.46, "yaw": 17.19}, "°"]
    assert readings["accelerometer"] == [{"x": 0.01, "y": -0.02, "z": 0.98}, "g"]
    assert readings["gyroscope"] == [{"x": 0.001, "y": 0.002, "z": -0.003}, "rad/s"]
    assert readings["compass"] == [{"x": 12.5, "y": -3.25, "z": 40.0}, "µT"]
    assert result["joystick"] == [["up", "pressed"], ["middle", "released"]]
    assert result["compensation_inputs"] == {"temperature_from_humidity": [22.25, "°C"],
                                             "temperature_from_pressure": [21.5, "°C"],
                                             "cpu_temperature": [48.12, "°C"]}


def assert_one_sentence(result: dict, *mentions: str) -> None:
    assert "escaped" not in result, result.get("escaped")
    assert "unavailable" in result, f"the device opened: {result}"
    text = result["unavailable"]
    assert "\n" not in text and result["suppressed"]
    for mention in mentions + ("driver: sense-emu", "driver: memory"):
        assert mention in text, f"{mention!r} missing from: {text}"


def test_a_user_outside_the_video_group(board):
    result, _ = board("open", groups=["input", "i2c"])
    assert_one_sentence(result, f"cannot open the Sense HAT framebuffer {FRAMEBUFFER}: permission denied",
                        "'video' group", f"usermod -aG video {USER}")


def test_a_framebuffer_the_user_may_read_but_not_write(board):
    # sense_hat itself only checks that /dev/fb1 exists; the first write would fail at run time.
    result, _ = board("open", framebuffer_mode="640")
    assert_one_sentence(result, f"cannot open the Sense HAT framebuffer {FRAMEBUFFER}: permission denied")


def test_a_framebuffer_without_its_joystick(board):
    result, _ = board("open", joystick=False)
    assert_one_sentence(result, "no joystick", '"Raspberry Pi Sense HAT Joystick"', "/sys/class/input")


def test_a_user_outside_the_input_group(board):
    result, _ = board("open", groups=["video", "i2c"])
    assert_one_sentence(result, f"cannot open the Sense HAT joystick {JOYSTICK}: permission denied",
                        "'input' group", f"usermod -aG input {USER}")


def test_no_sense_hat_framebuffer(board):
    result, _ = board("open", framebuffer="absent")
    assert_one_sentence(result, 'no framebuffer named "RPi-Sense FB"', "dtoverlay=rpi-sense")


def test_i2c_not_enabled(board):
    result, _ = board("open", i2c=False)
    assert_one_sentence(result, "no /dev/i2c-* device", "raspi-config")


@pytest.mark.parametrize("init, sensor", [("IMUInit", "IMU"), ("humidityInit", "humidity"), ("pressureInit", "pressure")])
def test_a_sensor_that_does_not_answer(board, init, sensor):
    result, _ = board("open", rtimu_fail=init)
    assert_one_sentence(result, f"{sensor} sensor", "I2C", "'i2c' group")
    assert result["left_open"] == []  # the joystick sense_hat opened is closed again


def test_a_service_user_without_a_home(board):
    # useradd --system --no-create-home: sense_hat cannot create ~/.config/sense_hat under /home.
    result, _ = board("open", home=False)
    assert_one_sentence(result, f"settings to {HOME}/.config/sense_hat", "writable home")


@pytest.mark.parametrize("scenario", [{"groups": ["input", "i2c"]}, {"joystick": False}], ids=["no-video-group", "no-joystick"])
def test_bridge_run_stops_with_one_sentence_and_exit_1(board, scenario):
    result, stderr = board("run", **scenario)
    assert result == {"exit": 1}
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "#error]" in line]
    assert len(errors) == 1 and "driver sense-hat" in errors[0] and "driver: memory" in errors[0], stderr


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
