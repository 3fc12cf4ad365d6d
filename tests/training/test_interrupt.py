"""Ctrl-C or SIGTERM during training: the step finishes, the resumable state is saved, and a
resume from it ends where an uninterrupted run does. A fresh run never overwrites a run's state."""

import os
import signal

import pytest
import torch

from ssl3d.cli.main import main as cli
from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.interrupt import StopRequest, TrainingInterrupted
from ssl3d.training.trainer import Trainer, logged_step, train


def interrupt_at(monkeypatch, step: int, sig=signal.SIGINT):
    """Send ``sig`` to this process while the trainer samples the batch of step ``step`` + 1."""
    sample = Trainer.sample_step

    def sample_then_signal(self):
        if self.step == step:
            os.kill(os.getpid(), sig)
        return sample(self)

    monkeypatch.setattr(Trainer, "sample_step", sample_then_signal)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_step_and_resume_is_exact(tiny_dataset, tmp_path, make_config,
                                                     monkeypatch, sig):
    # No checkpoint before the end; the stop comes between two log lines (steps 2 and 4).
    cfg = make_config(steps=4, checkpoint_every=4, log_every=2)
    train(cfg, tiny_dataset, "chair", tmp_path / "a")
    interrupt_at(monkeypatch, 2, sig)
    with pytest.raises(TrainingInterrupted, match=r"stopped at step 3 of 4; .*cc_last.pt.*--resume"):
        train(cfg, tiny_dataset, "chair", tmp_path / "b")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert load_checkpoint(tmp_path / "b" / "cc_last.pt")["step"] == 3
    assert not (tmp_path / "b" / "cc.pt").exists()
    monkeypatch.undo()
    train(cfg, tiny_dataset, "chair", tmp_path / "b", resume=True)
    a, b = load_checkpoint(tmp_path / "a" / "cc.pt"), load_checkpoint(tmp_path / "b" / "cc.pt")
    for net in ("recon", "pose"):
        for k in a[net]:
            torch.testing.assert_close(a[net][k], b[net][k], rtol=0, atol=0)
    assert ((tmp_path / "a" / "train_cc.log").read_text()
            == (tmp_path / "b" / "train_cc.log").read_text())


def test_the_command_says_how_to_go_on(tiny_dataset, tmp_path, monkeypatch, capsys):
    interrupt_at(monkeypatch, 1)
    out = tmp_path / "run"
    args = ["train", str(tiny_dataset), "--category", "chair", "--out", str(out), "--steps", "3",
            "--batch-size", "2", "--image-size", "32", "--n-points", "64", "--hidden", "32",
            "--no-progress"]
    assert cli(args) == 130
    err = capsys.readouterr().err
    assert "ssl3d: interrupted: stopping after this step" in err
    assert "ssl3d train: interrupted:" in err and "stopped at step 2 of 3" in err and "--resume" in err
    assert cli(args) == 2  # the same command without --resume would overwrite the state
    assert "cc_last.pt (an unfinished run at step 2 of 3; --resume continues it)" in capsys.readouterr().err
    assert not (out / "cc.pt").exists()
    monkeypatch.undo()
    assert cli(args + ["--resume"]) == 0
    assert load_checkpoint(out / "cc.pt")["step"] == 3


def test_only_the_first_process_of_a_run_tells_the_user(monkeypatch, capsys):
    import ssl3d.cli.train

    def stopped(quiet):
        def run(args):
            raise TrainingInterrupted("stopped at step 2 of 3", quiet=quiet)
        return run

    for quiet, said in ((False, "ssl3d train: interrupted: stopped at step 2 of 3\n"), (True, "")):
        monkeypatch.setattr(ssl3d.cli.train, "run", stopped(quiet))
        assert cli(["train", "data", "--category", "chair", "--out", "r"]) == 130
        assert capsys.readouterr().err == said


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job a script starts with &
    try:
        with StopRequest("never printed") as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert not stop.requested
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_second_signal_quits_at_once():
    with StopRequest("first") as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler before the next line
            pytest.fail("the second SIGINT did not interrupt")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_finished_run_is_trained_again_with_a_log_of_its_own(tiny_dataset, tmp_path, make_config):
    out = tmp_path / "r"
    train(make_config(), tiny_dataset, "chair", out)
    train(make_config(steps=3), tiny_dataset, "chair", out)  # finished: not refused
    assert [logged_step(line + "\n") for line in (out / "train_cc.log").read_text().splitlines()] == [1, 2, 3]


def test_an_unfinished_stage_nn_is_not_overwritten(tiny_dataset, tmp_path, make_config, monkeypatch):
    out = tmp_path / "r"
    train(make_config(), tiny_dataset, "chair", out)
    interrupt_at(monkeypatch, 1)
    with pytest.raises(TrainingInterrupted):
        train(make_config(stage="nn", steps=3), tiny_dataset, "chair", out)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"earlier run's nn_last.pt \(an unfinished run at step 2 of 3"):
        train(make_config(stage="nn", steps=3), tiny_dataset, "chair", out)


def test_resume_drops_log_lines_past_the_checkpoint(tiny_dataset, tmp_path, make_config):
    cfg = make_config(steps=4, checkpoint_every=2)
    train(cfg, tiny_dataset, "chair", tmp_path / "a")
    train(make_config(steps=2, checkpoint_every=2), tiny_dataset, "chair", tmp_path / "b")
    log = tmp_path / "b" / "train_cc.log"
    # A process killed after step 3's log line but before its checkpoint, mid-way through step 4's.
    log.write_text(log.read_text() + "step 3 loss_recon=9\nstep 4 loss_re")
    train(cfg, tiny_dataset, "chair", tmp_path / "b", resume=True)
    assert log.read_text() == (tmp_path / "a" / "train_cc.log").read_text()


def test_logged_step_reads_whole_lines_only():
    assert logged_step("step 12 loss_recon=1.5\n") == 12
    assert logged_step("step 12 loss_re") is None  # cut short
    assert logged_step("# a note\n") is None and logged_step("\n") is None


def test_a_run_that_fails_its_checks_leaves_no_empty_folder(tiny_dataset, tmp_path, make_config):
    out = tmp_path / "never"
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        train(make_config(init=str(tmp_path / "missing.pt")), tiny_dataset, "chair", out)
    assert not out.exists()


def test_an_old_collapse_note_does_not_let_a_fresh_run_overwrite_an_interrupted_one(
        tiny_dataset, tmp_path, make_config, monkeypatch):
    from ssl3d.training.checkpoint import stopped_path
    from ssl3d.training.trainer import PoseCollapse

    out = tmp_path / "r"
    means = Trainer._global_means  # every log reads as one azimuth: stopped at the second half's log
    monkeypatch.setattr(Trainer, "_global_means", lambda self, sums, counted: {
        **means(self, sums, counted), "view_distribution": 2.0})
    cfg = make_config(batch_size=32, steps=6, stop_on_collapse=True)
    with pytest.warns(UserWarning, match="pose collapse"), pytest.raises(PoseCollapse):
        train(cfg, tiny_dataset, "chair", out)
    assert stopped_path(out, "cc").is_file()
    monkeypatch.undo()
    interrupt_at(monkeypatch, 1)  # another seed in the same folder, interrupted
    with pytest.raises(TrainingInterrupted):
        train(make_config(steps=6, seed=1), tiny_dataset, "chair", out)
    assert not stopped_path(out, "cc").exists()  # the note was the earlier run's
    monkeypatch.undo()
    with pytest.raises(ValueError, match="an unfinished run at step 2 of 6"):
        train(make_config(steps=6, seed=1), tiny_dataset, "chair", out)
