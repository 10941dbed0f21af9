"""`until_first_ends`: the first pump to end ends the others; a quiet error is an end."""

from __future__ import annotations

import asyncio

import pytest

from virga_runtime.relay import until_first_ends


async def test_the_first_pump_to_end_cancels_the_other() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def ends() -> None:
        await asyncio.sleep(0)

    await until_first_ends(forever(), ends())
    assert cancelled.is_set()


async def test_a_quiet_error_ends_a_pump_and_any_other_is_raised() -> None:
    async def gone() -> None:
        raise ConnectionResetError

    async def forever() -> None:
        await asyncio.Event().wait()

    await until_first_ends(gone(), forever(), quiet=(ConnectionError,))
    with pytest.raises(ConnectionResetError):
        await until_first_ends(gone(), forever())
