"""Updates over WiFi in the core: path rules, bounds, and the transfer between the roles (pytest and MicroPython)."""

from checks import raises
from wire import KEY, Pipe, Randomness

from tcpcam.core import limits, messages, update
from tcpcam.core.client_role2 import Closing, Result
from tcpcam.core.server_role import ServerRole


def role():
    return ServerRole("1235", key=KEY, random=Randomness(), device={"name": "door", "sensor": "OV2640"})


def bundle(size=5000):
    """A small bundle: three files, one of them empty, the app bigger than two chunks."""
    app = bytes((index * 7) & 255 for index in range(size))
    return [("tcpcam/__init__.py", b"__version__ = '9.9'\n"), ("tcpcam/core/empty.py", b""),
            ("tcpcam_fw/app.py", app)]


def last_result(pipe):
    return pipe.of(Result)[-1]


def answer_steps(pipe, stored=None, error=None):
    """Carry out every step the role asked for; file pieces go into ``stored``."""
    while pipe.steps:
        step = pipe.steps.pop(0)
        if step.step == update.WRITE and stored is not None:
            for piece in step.pieces:
                data = stored.get(piece.path, b"") if piece.offset else b""
                assert len(data) == piece.offset
                stored[piece.path] = data + piece.data
        if step.ticket:
            pipe.server(pipe.role.update_done(step.ticket, error, pipe.now))
            pipe.pump()


def send(pipe, sender, stored, commit=True):
    pipe.request("update-begin", **sender.begin)
    answer_steps(pipe, stored)
    assert last_result(pipe).ok, last_result(pipe).error
    chunk = sender.next_chunk()
    while chunk is not None:
        pipe.request("update-chunk", **chunk)
        answer_steps(pipe, stored)
        assert last_result(pipe).ok, last_result(pipe).error
        chunk = sender.next_chunk()
    if commit:
        pipe.request("update-commit")


def test_bundle_paths_stay_inside_the_bundle_folders():
    for good in ("tcpcam/__init__.py", "tcpcam/core/server_role.mpy", "tcpcam_fw/app.py", "tcpcam_fw/a_b9.py"):
        assert update.path_problem(good) is None, good
    for bad in ("../boot.py", "/lib/tcpcam_fw/app.py", "tcpcam_fw/../../main.py", "boot.py", "main.py",
                "config.json", "tcpcam_fw/sub/x.py", "tcpcam_fw/x.txt", "tcpcam_fw/.py", "tcpcam_fw/a-b.py",
                "tcpcam_fw//app.py", "tcpcam_fw/./app.py", "tcpcam_fw\\app.py", "C:tcpcam_fw/app.py", "",
                "tcpcam_fw/" + "a" * 60 + ".py", None, 7, "lib/tcpcam_fw/app.py", "tcpcam_boot.py",
                "tcpcam_boot.mpy"):
        assert update.path_problem(bad) is not None, bad


def test_a_manifest_is_bounded_in_files_sizes_and_total():
    sender = update.UpdateSender(bundle(), "9.9")
    good = dict(sender.begin)
    manifest, problem = update.check_manifest(good)
    assert problem is None and manifest["bytes"] == 5020 and len(manifest["files"]) == 3

    def refused(change, words):
        body = dict(good)
        body.update(change)
        manifest, problem = update.check_manifest(body)
        assert manifest is None and words in problem, (change, problem)

    many = [["tcpcam_fw/m%d.py" % index, 1] for index in range(limits.UPDATE_MAX_FILES)] + [["tcpcam_fw/app.py", 1]]
    refused({"files": many, "bytes": len(many)}, "at most %d" % limits.UPDATE_MAX_FILES)
    big = [["tcpcam_fw/app.py", limits.UPDATE_MAX_FILE_BYTES + 1]]
    refused({"files": big, "bytes": limits.UPDATE_MAX_FILE_BYTES + 1}, "size of tcpcam_fw/app.py")
    files = [["tcpcam_fw/m%d.py" % index, limits.UPDATE_MAX_FILE_BYTES] for index in range(5)]
    files.append(["tcpcam_fw/app.py", 1])
    total = 5 * limits.UPDATE_MAX_FILE_BYTES + 1
    refused({"files": files, "bytes": total}, "at most %d bytes" % limits.UPDATE_MAX_BYTES)
    refused({"bytes": 5021}, "not the sum")
    refused({"sha256": "00" * 31}, "sha256")
    refused({"sha256": "G" * 64}, "sha256")
    refused({"files": [["tcpcam_fw/app.py", 1], ["tcpcam_fw/app.py", 1]], "bytes": 2}, "comes twice")
    refused({"files": [["tcpcam_fw/other.py", 1]], "bytes": 1}, "no tcpcam_fw/app.py")
    refused({"files": [["../main.py", 1]], "bytes": 1}, "empty, . or ..")
    refused({"files": "tcpcam_fw/app.py"}, "list of [path, size]")
    refused({"version": "v" * 65}, "version")
    with raises(ValueError, "outside the bundle's folders"):
        update.UpdateSender([("boot.py", b"x"), ("tcpcam_fw/app.py", b"y")], "1")


def test_a_bundle_goes_over_in_order_and_is_stored_exactly():
    files = bundle()
    pipe = Pipe(role())
    sender = update.UpdateSender(files, "9.9")
    stored = {}
    send(pipe, sender, stored)
    (commit,) = pipe.steps
    assert commit.step == update.COMMIT and commit.manifest["sha256"] == sender.begin["sha256"]
    assert stored == dict(files)
    answer_steps(pipe)
    result = last_result(pipe)
    assert result.ok and result.id == 2 + 3
    assert pipe.role.counters["updates_begun"] == 1 and pipe.role.counters["updates_stored"] == 1
    assert pipe.role.counters["requests_refused"] == 0 and pipe.closed is None


def test_a_wrong_digest_is_refused_at_the_commit_and_the_bundle_forgotten():
    files = bundle()
    sender = update.UpdateSender(files, "9.9")
    tampered = update.UpdateSender(files[:2] + [("tcpcam_fw/app.py", b"X" + files[2][1][1:])], "9.9")
    tampered.begin = sender.begin
    pipe = Pipe(role())
    send(pipe, tampered, {})
    result = last_result(pipe)
    assert not result.ok and "digest" in result.error
    assert [step.step for step in pipe.steps] == [update.ABORT]
    assert pipe.role.counters["updates_stored"] == 0 and pipe.role.counters["updates_abandoned"] == 1
    pipe.steps = []
    pipe.request("update-commit")
    assert "no update" in last_result(pipe).error and pipe.steps == []


def test_chunks_out_of_order_too_big_or_not_base64_abandon_the_update():
    for chunk, words in (({"offset": 10, "data": "QUJD"}, "offset 10"),
                         ({"offset": 0, "data": "A" * 4000}, "base64 of"),
                         ({"offset": 0, "data": "!!!"}, "not base64"), ({"offset": 0}, "base64 of")):
        pipe = Pipe(role())
        pipe.request("update-begin", **update.UpdateSender(bundle(), "1").begin)
        answer_steps(pipe)
        pipe.request("update-chunk", **chunk)
        result = last_result(pipe)
        assert not result.ok and words in result.error and "abandoned" in result.error, result.error
        assert [step.step for step in pipe.steps] == [update.ABORT]


def test_a_chunk_past_the_announced_size_is_refused():
    sender = update.UpdateSender(bundle(100), "1")
    pipe = Pipe(role())
    pipe.request("update-begin", **sender.begin)
    answer_steps(pipe)
    longer = update.UpdateSender(bundle(2000), "1")
    pipe.request("update-chunk", **longer.next_chunk())
    assert "does not fit" in last_result(pipe).error


def test_one_update_and_one_step_at_a_time():
    server = role()
    first = Pipe(server, name="first")
    second = Pipe(server, address="10.0.0.2", name="second")
    sender = update.UpdateSender(bundle(), "1")
    first.request("update-begin", **sender.begin)
    first.request("update-chunk", **sender.next_chunk())
    assert "not done yet" in last_result(first).error
    second.request("update-begin", **sender.begin)
    assert "another update" in last_result(second).error
    second.request("update-commit")
    assert "no update of this connection" in last_result(second).error
    answer_steps(first)
    assert last_result(first).ok


def test_update_requests_are_not_charged_to_the_request_budget():
    sender = update.UpdateSender(bundle(30 * limits.UPDATE_CHUNK_BYTES), "1")
    pipe = Pipe(role())
    send(pipe, sender, {}, commit=False)
    assert sender.sent == sender.total and pipe.role.counters["requests_refused"] == 0


def test_a_client_that_leaves_mid_transfer_leaves_nothing_behind():
    server = role()
    pipe = Pipe(server)
    sender = update.UpdateSender(bundle(), "1")
    pipe.request("update-begin", **sender.begin)
    answer_steps(pipe)
    pipe.request("update-chunk", **sender.next_chunk())
    answer_steps(pipe)
    pipe.server(server.disconnected(pipe.conn, pipe.now))
    assert [step.step for step in pipe.steps] == [update.ABORT]
    again = Pipe(server, name="again")
    again.request("update-begin", **sender.begin)
    assert [step.step for step in again.steps] == [update.BEGIN]


def test_a_client_that_leaves_during_the_commit_does_not_undo_it():
    server = role()
    pipe = Pipe(server)
    send(pipe, update.UpdateSender(bundle(), "1"), {})
    (commit,) = pipe.steps
    pipe.steps = []
    pipe.server(server.disconnected(pipe.conn, pipe.now))
    assert pipe.steps == []
    assert server.update_done(commit.ticket, None, pipe.now)[0].text.startswith("update 1 stored")
    assert server.counters["updates_stored"] == 1


def test_a_failed_step_abandons_the_update_with_the_drivers_words():
    pipe = Pipe(role())
    sender = update.UpdateSender(bundle(), "1")
    pipe.request("update-begin", **sender.begin)
    answer_steps(pipe)
    pipe.request("update-chunk", **sender.next_chunk())
    answer_steps(pipe, error="cannot write tcpcam_fw/app.py: [Errno 28] ENOSPC")
    result = last_result(pipe)
    assert not result.ok and "ENOSPC" in result.error
    assert pipe.role.counters["updates_abandoned"] == 1
    pipe.request("update-chunk", **sender.next_chunk())
    assert "no update" in last_result(pipe).error


def test_a_silent_update_is_abandoned_after_its_idle_time():
    server = role()
    pipe = Pipe(server)
    pipe.request("update-begin", **update.UpdateSender(bundle(), "1").begin)
    answer_steps(pipe)
    assert server.next_deadline() <= limits.UPDATE_IDLE_MS
    pipe.tick(limits.UPDATE_IDLE_MS - 1)
    assert pipe.steps == []
    pipe.tick(limits.UPDATE_IDLE_MS)
    assert [step.step for step in pipe.steps] == [update.ABORT]


def test_a_chunk_altered_on_the_way_closes_the_connection():
    server = role()
    pipe = Pipe(server)
    sender = update.UpdateSender(bundle(), "1")
    pipe.request("update-begin", **sender.begin)
    answer_steps(pipe)
    counter, write = pipe.client.request("update-chunk", pipe.now, **sender.next_chunk())
    altered = bytearray(write.head)
    altered[-3] ^= 1
    pipe.server(server.receive(pipe.conn, bytes(altered), pipe.now))
    pipe.pump()
    assert pipe.closed == "close" and pipe.of(Closing)[0].reason == "bad-message"
    pipe.server(server.disconnected(pipe.conn, pipe.now))
    assert [step.step for step in pipe.steps] == [update.ABORT]
    assert server.counters["updates_stored"] == 0


def test_the_largest_chunk_fits_a_message_and_a_manifest_too_long_is_refused_before_sending():
    sender = update.UpdateSender([("tcpcam_fw/app.py", bytes(range(256)) * 40)], "v" * limits.UPDATE_MAX_VERSION_BYTES)
    chunk = sender.next_chunk()
    assert len(update.binascii.a2b_base64(chunk["data"])) == limits.UPDATE_CHUNK_BYTES
    chunk["offset"] = limits.UPDATE_MAX_BYTES
    signed = messages.sign(messages.CONTROL, bytes(32), messages.FROM_CLIENT, 2 ** 40, dict(chunk, op="update-chunk"))
    assert len(signed) - 4 <= messages.MAX_MESSAGE_BYTES
    files = [("tcpcam_fw/%s%02d.py" % ("m" * 48, index), b"x") for index in range(limits.UPDATE_MAX_FILES - 1)]
    with raises(ValueError, "over a message's 4096"):
        update.UpdateSender(files + [("tcpcam_fw/app.py", b"y")], "1")
