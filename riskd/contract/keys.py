"""Every Redis name riskd publishes or reads, under one prefix (docs/redis.md): the one place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Every Redis name riskd publishes or reads under one prefix (``riskd:v1``; docs/redis.md): the one
    place the schema's names are spelled, beside the payloads above. The alert outbox's internal keys
    (``<prefix>:alerts:*``) are spelled by the outbox alone."""

    prefix: str

    @property
    def regime(self) -> str:
        """The current regime (a snapshot, with expiry)."""
        return f"{self.prefix}:regime"

    @property
    def history(self) -> str:
        """The history stream (field ``json``: a snapshot; revisions appended)."""
        return f"{self.prefix}:regime:history"

    @property
    def revisions(self) -> str:
        """Hash: hour (ms) → highest revision written (the publish script's guard)."""
        return f"{self.prefix}:regime:revisions"

    @property
    def events(self) -> str:
        """The pub/sub channel (:data:`ChannelEvent`)."""
        return f"{self.prefix}:events"

    @property
    def leader(self) -> str:
        """The leader lease (instance id, with expiry)."""
        return f"{self.prefix}:leader"

    @property
    def alert_cursor(self) -> str:
        """How far the leader derived alerts from the stream (an entry id)."""
        return f"{self.prefix}:alerts:cursor"

    @property
    def history_origin(self) -> str:
        """The hour every replica's history starts from (ISO)."""
        return f"{self.prefix}:history:origin"

    @property
    def live(self) -> str:
        """The provisional intra-hour state (``riskd.streams.live.LiveRegime``)."""
        return f"{self.prefix}:regime:live"

    @property
    def live_episodes(self) -> str:
        """Hash: hour end (ms) → open provisional episode."""
        return f"{self.prefix}:regime:live:episodes"

    @property
    def funding(self) -> str:
        """The latest funding per venue and symbol (``/funding``)."""
        return f"{self.prefix}:funding"
