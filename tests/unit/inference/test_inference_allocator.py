"""`inference.env.with_allocator_tuning`: the server restarts itself once under glibc malloc settings
that keep batch buffers in the heap (docs/design.md, "Inference endpoint")."""

from __future__ import annotations

import sys

import pytest

from inference import env


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(env.os, "execve", lambda path, args, environ: calls.append((path, args, environ)))
    return calls


def test_a_process_started_without_the_settings_restarts_with_them(monkeypatch, execs):
    # GIVEN a process started with glibc's defaults
    for name in env.ALLOCATOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(env.VIGIL_MALLOC_TUNING, raising=False)

    # WHEN the server asks for the tuning
    env.with_allocator_tuning("inference.serve", ["--model", "m.tar.gz"])

    # THEN it re-executes the same command, with the settings added to its environment
    [(path, args, environ)] = execs
    assert (path, args) == (sys.executable, [sys.executable, "-m", "inference.serve", "--model", "m.tar.gz"])
    assert {name: environ[name] for name in env.ALLOCATOR_ENV} == env.ALLOCATOR_ENV


def test_a_process_with_the_settings_or_opted_out_goes_on(monkeypatch, execs):
    for name, value in env.ALLOCATOR_ENV.items():
        monkeypatch.setenv(name, value)
    env.with_allocator_tuning("inference.serve", [])
    for name in env.ALLOCATOR_ENV:
        monkeypatch.delenv(name)
    monkeypatch.setenv(env.VIGIL_MALLOC_TUNING, "0")
    env.with_allocator_tuning("inference.serve", [])
    assert execs == []
