"""Small environments for the core tests: a complete one, a fault-injecting one, broken ones."""

from __future__ import annotations

import json
import os
import time
from typing import Any, ClassVar

from agentgym.core import TextEnv

ROOM_NAMES = ("hall", "kitchen", "cellar", "attic", "garden", "study", "vault")


class KeyDoorEnv(TextEnv):
    """Find the key, open the locked door, enter the goal room. A complete text environment."""

    instructions = "Actions: 'go <room>', 'take key', 'open door'."
    splits = ("train", "test")

    def __init__(
        self,
        num_rooms: int = 4,
        render_mode: str | None = None,
        tasks_per_split: int = 5,
        key_reward: float = 0.0,
    ):
        super().__init__(render_mode=render_mode)
        self.num_rooms = num_rooms
        self.tasks_per_split = tasks_per_split
        self.key_reward = key_reward  # partial credit for taking the key

    def task_ids(self, split: str) -> list[int]:
        offset = {"train": 0, "test": 1000}[split]
        return list(range(offset, offset + self.tasks_per_split))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        self.split = options.get("split", "train")
        if "task_id" in options:
            self.task_id = int(options["task_id"])
        else:
            ids = self.task_ids(self.split)
            self.task_id = ids[int(self.np_random.integers(len(ids)))]
        rooms = [ROOM_NAMES[(self.task_id + i) % len(ROOM_NAMES)] for i in range(self.num_rooms)]
        self.rooms, self.goal = rooms[:-1], rooms[-1]
        self.key_room = self.rooms[(self.task_id * 7 + int(self.np_random.integers(2))) % len(self.rooms)]
        self.here, self.has_key, self.door_open = self.rooms[0], False, False
        return self._observe(self._describe()), self._info()

    def _describe(self) -> str:
        parts = [f"You are in the {self.here}."]
        if self.here == self.key_room and not self.has_key:
            parts.append("A key lies here.")
        parts.append(f"The door to the {self.goal} is {'open' if self.door_open else 'locked'}.")
        return " ".join(parts)

    def _actions(self) -> list[str]:
        actions = [f"go {room}" for room in self.rooms if room != self.here]
        if self.here == self.key_room and not self.has_key:
            actions.append("take key")
        if self.has_key and not self.door_open:
            actions.append("open door")
        if self.door_open:
            actions.append(f"go {self.goal}")
        return actions

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": f"Reach the {self.goal}.",
            "task_id": self.task_id,
            "split": self.split,
            "anchor": (self.here, self.has_key, self.door_open),
            "available_actions": self._actions(),
            **extra,
        }

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        command = action.strip().lower()
        if command not in self._actions():
            info = self._info(action_valid=False, error=f"{action[:40]!r} is not possible here")
            return self._observe("Nothing happens. " + self._describe()), 0.0, False, False, info
        partial = 0.0
        if command == "take key":
            self.has_key, partial = True, self.key_reward
        elif command == "open door":
            self.door_open = True
        else:
            self.here = command.removeprefix("go ")
        won = self.here == self.goal
        info = self._info(action_valid=True)
        if won:
            info.update(won=True, score=1.0)
        return self._observe(self._describe()), float(won) + partial, won, False, info

    def expert_action(self) -> str:
        if self.door_open:
            return f"go {self.goal}"
        if self.has_key:
            return "open door"
        if self.here == self.key_room:
            return "take key"
        return f"go {self.key_room}"


class FaultyEnv(KeyDoorEnv):
    """KeyDoor that raises on 'raise', hangs on 'hang', takes a second on 'nap' and kills its process
    on 'die'."""

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if action == "raise":
            raise RuntimeError("boom")
        if action == "hang":
            time.sleep(3600)
        if action == "nap":
            time.sleep(1.0)
        if action == "die":
            os._exit(13)
        return super().step(action)


class NondeterministicEnv(KeyDoorEnv):
    """Breaks seeding: the key moves with every reset, whatever the seed."""

    resets = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        NondeterministicEnv.resets += 1
        self.key_room = self.rooms[NondeterministicEnv.resets % len(self.rooms)]
        return self._observe(self._describe()), self._info()


class StateChangingInvalidEnv(KeyDoorEnv):
    """Reports actions as invalid but moves anyway."""

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        if info.get("action_valid") is False and self.rooms:
            self.here = self.rooms[-1] if self.here != self.rooms[-1] else self.rooms[0]
            info = self._info(action_valid=False, error="moved anyway")
        return observation, reward, terminated, truncated, info


class CrashOnGarbageEnv(KeyDoorEnv):
    """Raises on actions it does not know instead of marking them invalid."""

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if action.strip().lower() not in self._actions():
            raise ValueError(f"unknown action {action!r}")
        return super().step(action)


class ToolKeyDoorEnv(KeyDoorEnv):
    """KeyDoor played through one tool: ``{"name": "act", "arguments": {"command": "take key"}}``."""

    action_format = "tool_call"
    tools: ClassVar[list[dict[str, Any]]] = [
        {
            "type": "function",
            "function": {
                "name": "act",
                "description": "Do one thing in the house.",
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            },
        }
    ]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        try:
            command = json.loads(action)["arguments"]["command"]
        except (ValueError, KeyError, TypeError):
            command = ""
        return super().step(command)

    def expert_action(self) -> str:
        return json.dumps({"arguments": {"command": super().expert_action()}, "name": "act"}, sort_keys=True)
