"""Every default and bound of the protocol, in one place.

The reference server, the firmware's ``config.json`` schema, the client and
the recorder all take their defaults and limits from here, so the same
setting can never mean two things in two places. Times are integer
milliseconds (``_MS``) or seconds (``_S``), as their names say; sizes are
bytes.
"""

# The wire.

#: The original firmware's port.
DEFAULT_PORT = 3333
#: The original firmware's PIN (its menuconfig default).
DEFAULT_PIN = "1235"
#: Longest PIN or command token accepted (the original read each into 128 bytes).
MAX_TOKEN_BYTES = 128
#: Largest payload a 4-byte length can declare.
MAX_DECLARABLE_BYTES = 0xFFFFFFFF
#: Largest frame accepted or served by default: far above any camera JPEG,
#: small enough that a lying header cannot make a receiver hold much memory.
MAX_FRAME_BYTES = 8 * 1024 * 1024
#: The command's range: a C ``int`` on the original firmware.
COMMAND_MIN = -(2 ** 31)
COMMAND_MAX = 2 ** 31 - 1

# The request.

#: Quiet time after which an unterminated token counts as complete.
IDLE_MS = 100
#: Time a client has, from its connection, to send PIN and command.
HANDSHAKE_TIMEOUT_MS = 10000
#: Pause a client leaves between PIN and command: the original firmware reads
#: each with one ``recv()`` and would see both as one PIN if they arrived together.
PIN_PAUSE_MS = 50

# Serving.

#: Connections a server keeps at once by default (streaming or in their request).
MAX_CLIENTS = 8
#: The most connections a board may be configured for.
BOARD_MAX_CLIENTS = 16
#: The most connections the reference server may be configured for.
SERVER_MAX_CLIENTS = 1024
#: Time a streaming connection has to take one frame, from when it is offered.
SEND_TIMEOUT_MS = 30000
#: Time a closing connection has to take what was written to it before it is aborted.
CLOSE_TIMEOUT_MS = 30000
#: Time a frame source may take for one frame before the frame is skipped.
SOURCE_TIMEOUT_MS = 30000
#: First pause after a failed capture; it doubles with each failure in a row...
CAPTURE_RETRY_MS = 250
#: ... up to this.
CAPTURE_RETRY_MAX_MS = 5000
#: Time between frames on the firmware by default (the original's STREAM_PAYLOAD_DELAY).
BOARD_INTERVAL_MS = 2000
#: Time between frames on the reference server by default.
SERVER_INTERVAL_MS = 100
#: Longest time between frames anyone may configure: one hour.
MAX_INTERVAL_MS = 3600000
#: TCP keep-alive: idle seconds, seconds between probes, probes (as the original).
KEEPALIVE_IDLE_S = 5
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
#: Connections waiting to be accepted on the board, as the original.
BOARD_BACKLOG = 3

# Staying up (the firmware).

#: Time the board's hardware watchdog (``machine.WDT``) waits for a feed
#: before it resets the board; the firmware feeds it only while the frame
#: loop and the server both make progress.
WATCHDOG_TIMEOUT_MS = 30000
#: Shortest watchdog timeout: MicroPython before 1.21 counts it in whole seconds.
MIN_WATCHDOG_TIMEOUT_MS = 1000
#: Longest watchdog timeout anyone may configure: ten minutes.
MAX_WATCHDOG_TIMEOUT_MS = 600000
#: The most a part may go without showing progress, beyond what its work may take,
#: before the watchdog is no longer fed.
LIVENESS_SLACK_MS = 10000
#: Longest a camera driver blocks in one capture (esp32-camera's FB_GET_TIMEOUT).
CAMERA_FRAME_WAIT_MS = 4000
#: NTP tries after each WiFi join, with this pause between them...
NTP_ATTEMPTS = 3
NTP_RETRY_MS = 2000
#: ... and how often a synced clock is set again.
NTP_RESYNC_MS = 6 * 3600 * 1000
#: The NTP server asked by default (ntptime's own default).
NTP_HOST = "pool.ntp.org"
#: Frame buffers a camera driver may be given (both drivers take at most two).
MAX_FRAME_BUFFERS = 2

# Throttling of failed requests.

#: Failed requests from one address within the window that block it.
PIN_FAILURES = 5
#: Time over which failures are counted, from the first of them.
PIN_WINDOW_MS = 60000
#: Time an address is refused once it has failed too often.
PIN_BLOCK_MS = 60000
#: Most addresses the throttle remembers at once.
THROTTLE_ADDRESSES = 256
#: Failed requests from all addresses together, per window, before addresses
#: that have not given the right PIN lately are refused until the window ends.
PIN_TOTAL_FAILURES = 20
#: The window of :data:`PIN_TOTAL_FAILURES`.
PIN_TOTAL_WINDOW_MS = 60000
#: Addresses that gave the right PIN, remembered to let them in during an attack.
TRUSTED_ADDRESSES = 16
#: How long such an address stays trusted.
TRUST_MS = 24 * 3600 * 1000

# Admission before the PIN.

#: Connections one address may have that have not given the right PIN yet;
#: one more from it takes the place of its oldest.
PENDING_PER_ADDRESS = 3
#: Time a connection has for its first byte (the whole request has
#: HANDSHAKE_TIMEOUT_MS): a silent connection does not hold a place for long.
FIRST_BYTE_TIMEOUT_MS = 2000

# Protocol 2.

#: Snapshots one client may have asked for and not received yet.
MAX_SNAPSHOTS = 2
#: Requests a client may send per second on average, and in a burst.
REQUEST_RATE = 10
REQUEST_BURST = 20
#: Refused requests in a row after which a client is closed.
REFUSED_REQUESTS = 40
#: Time between health messages to each client.
HEALTH_INTERVAL_MS = 5000
#: Highest frame rate a client may ask for.
MAX_CLIENT_FPS = 100
#: A refused connection is kept this long to tell a protocol 2 client why ...
REFUSAL_LINGER_MS = 500
#: ... and at most this many at once (the rest are closed at once, silently).
MAX_REFUSALS_LINGERING = 4

# Logging.

#: Repeated refusals of one address for one reason are logged once per this
#: time, with a count.
LOG_SUMMARY_MS = 60000
#: Most (address, reason) pairs summarised at once; more are counted together.
LOG_SUMMARY_KEYS = 32

# The client.

#: Time a client waits for the TCP connection.
CONNECT_TIMEOUT_S = 30.0
#: Longest silence ``tcpcam get`` accepts by default.
GET_TIMEOUT_S = 30.0
#: Files ``tcpcam get --split`` writes by default before it stops: a day of
#: frames every 10 s, far from what fills a disk or a folder listing.
GET_MAX_FILES = 10000
#: Payload bytes ``tcpcam get`` writes by default (to FNAME, stdout or the
#: --split files) before it stops.
GET_MAX_BYTES = 1000 * 1000 * 1000
#: Longest silence after which the recorder reconnects to a camera.
RECORDER_FRAME_TIMEOUT_S = 10.0
