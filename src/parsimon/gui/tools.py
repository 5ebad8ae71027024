"""GUI-Owl-1.5's three tool schemas and its system prompt, byte for byte as the official clients send them.

The schemas are protocol data from the official clients of Mobile-Agent-v3.5 (``X-PLUG/MobileAgent``,
``Mobile-Agent-v3.5/{computer_use/utils.py, mobile_use/utils.py, browser_use/prompts.py}``, commit
``11cea57``): the model was trained on these exact strings and users report scores moving by points when
a client paraphrases them, so :func:`system_prompt` reproduces them exactly (a test compares SHA-256
digests). Two quirks are kept on purpose: the ``mobile_use`` and ``browser_use`` lines carry raw newlines
inside their JSON strings, and the ``browser_use`` enum literally reads ``"select, "wait"`` (malformed JSON
the model nevertheless sees). :data:`ACTION_ARGS` lists the arguments each action needs, as the schemas'
descriptions state them ("Required only by ..."); :func:`parameters_schema` gives a well-formed JSON
schema of each tool's arguments for validation.

MCP tools (``{"name", "description", "inputSchema"}`` or OpenAI ``{"type": "function", ...}`` objects)
are appended to ``<tools>`` one JSON line each, and the first response-format line gains "or specifying
which tool to invoke", as the OSWorld-MCP GUI-Owl client does.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["ACTION_ARGS", "OFFICIAL_PROMPT_SHA256", "PLATFORMS", "TOOLS", "mcp_tool_line", "parameters_schema",
           "prompt_sha256", "system_prompt", "tool_line", "tool_name"]

PLATFORMS = ("computer", "mobile", "browser")
# SHA-256 of the official clients' SYSTEM_PROMPT strings (commit 11cea57; see the module docstring).
OFFICIAL_PROMPT_SHA256 = {
    "computer": "c81ce4add7fdc174795fed0d197734479154bcade1462ac5e24781d181cb448e",
    "mobile": "28235cbaf0bd969239f5cdd3f1fa67a59edf8de4a39c49e96011feac2fbf62fe",
    "browser": "5b49d7c7f61b781731b56e75ff9019352a3104b988de32c91e0123619d38ec68",
}

COMPUTER_USE: dict[str, Any] = {
    'type': 'function',
    'function': {
        'name': 'computer_use',
        'description': (
            'Use a mouse and keyboard to interact with a computer, and take screenshots.\n* This is an'
            ' interface to a desktop GUI. You do not have access to a terminal or applications menu. You'
            ' must click on desktop icons to start applications.\n* Some applications may take time to'
            ' start or process actions, so you may need to wait and take successive screenshots to see the'
            " results of your actions. E.g. if you click on Firefox and a window doesn't open, try wait and"
            " taking another screenshot.\n* The screen's resolution is 1000x1000.\n* Make sure to click any"
            " buttons, links, icons, etc with the cursor tip in the center of the element. Don't click"
            ' boxes on their edges unless asked.'
        ),
        'parameters': {
            'properties': {
                'action': {
                    'description': (
                        'The action to perform. The available actions are:\n* `key`: Performs key down'
                        ' presses on the arguments passed in order, then performs key releases in reverse'
                        ' order.\n* `type`: Type a string of text on the keyboard.\n* `mouse_move`: Move'
                        ' the cursor to a specified (x, y) pixel coordinate on the screen.\n* `left_click`:'
                        ' Click the left mouse button at a specified (x, y) pixel coordinate on the'
                        ' screen.\n* `left_click_drag`: Click and drag the cursor to a specified (x, y)'
                        ' pixel coordinate on the screen.\n* `right_click`: Click the right mouse button at'
                        ' a specified (x, y) pixel coordinate on the screen.\n* `middle_click`: Click the'
                        ' middle mouse button at a specified (x, y) pixel coordinate on the screen.\n*'
                        ' `double_click`: Double-click the left mouse button at a specified (x, y) pixel'
                        ' coordinate on the screen.\n* `triple_click`: Triple-click the left mouse button'
                        ' at a specified (x, y) pixel coordinate on the screen.\n* `scroll`: Performs a'
                        ' scroll of the mouse scroll wheel.\n* `hscroll`: Performs a horizontal scroll.\n*'
                        ' `wait`: Wait specified seconds for the change to happen.\n* `terminate`:'
                        ' Terminate the current task and report its completion status.\n* `answer`: Answer'
                        ' a question.\n* `interact`: Resolve the blocking window by interacting with the'
                        ' user.'
                    ),
                    'enum': [
                        'key', 'type', 'mouse_move', 'left_click', 'left_click_drag', 'right_click',
                        'middle_click', 'double_click', 'triple_click', 'scroll', 'hscroll', 'wait',
                        'terminate', 'answer', 'interact'
                    ],
                    'type': 'string',
                },
                'keys': {
                    'description': 'Required only by `action=key`.',
                    'type': 'array',
                },
                'text': {
                    'description': 'Required only by `action=type`, `action=answer` and `action=interact`.',
                    'type': 'string',
                },
                'coordinate': {
                    'description': (
                        '(x, y): The x (pixels from the left edge) and y (pixels from the top edge)'
                        ' coordinates to move the mouse to. Required only by `action=mouse_move` and'
                        ' `action=left_click_drag`.'
                    ),
                    'type': 'array',
                },
                'pixels': {
                    'description': (
                        'The amount of scrolling to perform. Positive values scroll up, negative values'
                        ' scroll down. Required only by `action=scroll` and `action=hscroll`.'
                    ),
                    'type': 'number',
                },
                'time': {
                    'description': 'The seconds to wait. Required only by `action=wait`.',
                    'type': 'number',
                },
                'status': {
                    'description': 'The status of the task. Required only by `action=terminate`.',
                    'type': 'string',
                    'enum': ['success', 'failure'],
                },
            },
            'required': ['action'],
            'type': 'object',
        },
    },
}

MOBILE_USE: dict[str, Any] = {
    'type': 'function',
    'function': {
        'name_for_human': 'mobile_use',
        'name': 'mobile_use',
        'description': (
            'Use a touchscreen to interact with a mobile device, and take screenshots.\n* This is an'
            ' interface to a mobile device with touchscreen. You can perform actions like clicking, typing,'
            ' swiping, etc.\n* Some applications may take time to start or process actions, so you may need'
            " to wait and take successive screenshots to see the results of your actions.\n* The screen's"
            ' resolution is 1000x1000.\n* Make sure to click any buttons, links, icons, etc with the cursor'
            " tip in the center of the element. Don't click boxes on their edges unless asked."
        ),
        'parameters': {
            'properties': {
                'action': {
                    'description': (
                        'The action to perform. The available actions are:\n* `key`: Perform a key event on'
                        " the mobile device.\n    - This supports adb's `keyevent` syntax.\n    - Examples:"
                        ' "volume_up", "volume_down", "power", "camera", "clear".\n* `click`: Click the'
                        ' point on the screen with coordinate (x, y).\n* `long_press`: Press the point on'
                        ' the screen with coordinate (x, y) for specified seconds.\n* `swipe`: Swipe from'
                        ' the starting point with coordinate (x, y) to the end point with coordinates2 (x2,'
                        ' y2).\n* `type`: Input the specified text into the activated input box.\n*'
                        ' `system_button`: Press the system button.\n* `open`: Open an app on the'
                        ' device.\n* `wait`: Wait specified seconds for the change to happen.\n* `answer`:'
                        ' Terminate the current task and output the answer.\n* `interact`: Resolve the'
                        ' blocking window by interacting with the user.\n* `terminate`: Terminate the'
                        ' current task and report its completion status.'
                    ),
                    'enum': [
                        'key', 'click', 'long_press', 'swipe', 'type', 'system_button', 'open', 'wait',
                        'answer', 'interact', 'terminate'
                    ],
                    'type': 'string',
                },
                'coordinate': {
                    'description': (
                        '(x, y): The x (pixels from the left edge) and y (pixels from the top edge)'
                        ' coordinates to move the mouse to. Required only by `action=click`,'
                        ' `action=long_press`, and `action=swipe`.'
                    ),
                    'type': 'array',
                },
                'coordinate2': {
                    'description': (
                        '(x, y): The x (pixels from the left edge) and y (pixels from the top edge)'
                        ' coordinates to move the mouse to. Required only by `action=swipe`.'
                    ),
                    'type': 'array',
                },
                'text': {
                    'description': (
                        'Required only by `action=key`, `action=type`, `action=open`, `action=answer`,and'
                        ' `action=interact`.'
                    ),
                    'type': 'string',
                },
                'time': {
                    'description': 'The seconds to wait. Required only by `action=long_press` and `action=wait`.',
                    'type': 'number',
                },
                'button': {
                    'description': (
                        'Back means returning to the previous interface, Home means returning to the'
                        ' desktop, Menu means opening the application background menu, and Enter means'
                        ' pressing the enter. Required only by `action=system_button`'
                    ),
                    'enum': ['Back', 'Home', 'Menu', 'Enter'],
                    'type': 'string',
                },
                'status': {
                    'description': 'The status of the task. Required only by `action=terminate`.',
                    'type': 'string',
                    'enum': ['success', 'failure'],
                },
            },
            'required': ['action'],
            'type': 'object',
        },
        'args_format': 'Format the arguments as a JSON object.',
    },
}

BROWSER_USE: dict[str, Any] = {
    'type': 'function',
    'function': {
        'name_for_human': 'browser_use',
        'name': 'browser_use',
        'description': (
            'Use a browser to interact with web pages and take labeled screenshots.\n* This is an interface'
            ' to a web browser. You can click elements, type into inputs, scroll, wait for loading, go'
            ' back, etc.\n* Each Observation screenshot contains Numerical Labels placed at the TOP LEFT of'
            ' each Web Element. Use these labels to target elements.\n* Some pages may take time to load;'
            ' you may need to wait and take successive screenshots.\n* Avoid clicking near element edges;'
            ' target the center of the element.\n* Execute exactly ONE interaction action per step; do not'
            ' chain multiple interactions in one call.'
        ),
        'parameters': {
            'properties': {
                'action': {
                    'description': (
                        'The action to perform. The available actions are:\n* `click`: Click a web element'
                        ' by numerical label.\n* `type`: Clear existing content in a textbox/input and type'
                        ' content. The system will automatically press ENTER after typing.\n* `scroll`:'
                        ' Scroll within WINDOW or within a specific scrollable element/area (by label).\n*'
                        ' `select`: Selects a specific option from a menu or dropdown. Use the option text'
                        ' provided in the textual information.\n* `wait`: Wait for page processes to finish'
                        ' (default 5 seconds unless specified).\n* `go_back`: Go back to the previous'
                        ' page.\n* `wikipedia`: Directly jump to the Wikipedia homepage to search for'
                        ' information.\n* `answer`: Terminate the current task and output the final answer.'
                    ),
                    'enum': [
                        'click', 'type', 'scroll', 'select', 'wait', 'go_back', 'wikipedia', 'answer'
                    ],
                    'type': 'string',
                },
                'label': {
                    'description': (
                        'Numerical label of the target web element. Required only by `action=click`,'
                        ' `action=type`, `action=scroll`, and `action=select` when scrolling within a'
                        ' specific area. Use string value `WINDOW` to scroll the whole page.'
                    ),
                    'type': ['integer', 'string'],
                },
                'direction': {
                    'description': 'Scroll direction. Required only by `action=scroll`.',
                    'enum': ['up', 'down'],
                    'type': 'string',
                },
                'text': {
                    'description': 'Required only by `action=type` and `action=answer`.',
                    'type': 'string',
                },
                'option': {
                    'description': 'The option to select. Required only by `action=select`',
                    'type': 'string',
                },
                'time': {
                    'description': (
                        'The seconds to wait. Required only by `action=wait` when overriding the default.'
                    ),
                    'type': 'integer',
                },
            },
            'required': ['action'],
            'type': 'object',
        },
        'args_format': 'Format the arguments as a JSON object.',
    },
}
TOOLS: dict[str, dict[str, Any]] = {"computer": COMPUTER_USE, "mobile": MOBILE_USE, "browser": BROWSER_USE}

# platform -> action -> (required arguments, optional arguments), from the schemas' descriptions.
ACTION_ARGS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "computer": {
        "key": (("keys",), ()), "type": (("text",), ()), "mouse_move": (("coordinate",), ()),
        "left_click": (("coordinate",), ()), "left_click_drag": (("coordinate",), ()),
        "right_click": (("coordinate",), ()), "middle_click": (("coordinate",), ()),
        "double_click": (("coordinate",), ()), "triple_click": (("coordinate",), ()),
        "scroll": (("pixels",), ("coordinate",)), "hscroll": (("pixels",), ("coordinate",)),
        "wait": (("time",), ()), "terminate": (("status",), ()), "answer": (("text",), ()),
        "interact": (("text",), ()),
    },
    "mobile": {
        "key": (("text",), ()), "click": (("coordinate",), ()), "long_press": (("coordinate",), ("time",)),
        "swipe": (("coordinate", "coordinate2"), ()), "type": (("text",), ()), "system_button": (("button",), ()),
        "open": (("text",), ()), "wait": (("time",), ()), "answer": (("text",), ()), "interact": (("text",), ()),
        "terminate": (("status",), ()),
    },
    "browser": {
        "click": (("label",), ()), "type": (("label", "text"), ()), "scroll": (("direction",), ("label",)),
        "select": (("label", "option"), ()), "wait": ((), ("time",)), "go_back": ((), ()),
        "wikipedia": ((), ()), "answer": (("text",), ()),
    },
}

_HEADER = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n")
_CALL_FORMAT = ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\n')
_RESPONSE_FORMAT = ("# Response format\n\nResponse format for every step:\n"
                    "1) Action: a short imperative describing what to do in the UI{mcp}.\n"
                    "2) A single <tool_call>...</tool_call> block containing only the JSON: "
                    '{{"name": <function-name>, "arguments": <args-json-object>}}.\n\n'
                    "Rules:\n- Output exactly in the order: Action, <tool_call>.\n"
                    "- Be brief: {brief} for Action.\n- Do not output anything else outside those two parts.\n")
# The official clients differ in these words only.
_RULES = {
    "computer": ("one", "- If finishing, use action=terminate in the tool call."),
    "mobile": ("one sentence", "- If finishing, use action=terminate in the tool call."),
    "browser": ("one line", "- Execute ONLY ONE interaction per iteration (one tool call).\n"
                            "- If finishing, use action=answer in the tool call."),
}
_MCP_CLAUSE = ", or specifying which tool to invoke"


def _check_platform(platform: str) -> str:
    if platform not in TOOLS:
        raise ConfigError(f"`platform` must be one of {list(PLATFORMS)}, got {platform!r}")
    return platform


def tool_name(platform: str) -> str:
    """The function name of a platform's tool (``computer_use``, ``mobile_use``, ``browser_use``)."""
    return TOOLS[_check_platform(platform)]["function"]["name"]


def tool_line(platform: str) -> str:
    """The platform tool's line inside ``<tools>``, exactly as the official client writes it."""
    line = json.dumps(TOOLS[_check_platform(platform)])
    if platform in ("mobile", "browser"):
        line = line.replace("\\n", "\n")
    if platform == "browser":
        line = line.replace('"select", "wait"', '"select, "wait"')
    return line


def mcp_tool_line(tool: dict[str, Any]) -> str:
    """One MCP tool as an OpenAI function line (``{"type": "function", "function": {...}}``)."""
    if not isinstance(tool, dict):
        raise ConfigError(f"an MCP tool must be a dict, got {type(tool).__name__}")
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        fn = tool["function"]
    else:
        if "name" not in tool:
            raise ConfigError(f"an MCP tool needs a `name`, got keys {sorted(tool)}")
        fn = {"name": tool["name"], "description": tool.get("description") or "",
              "parameters": tool.get("inputSchema") or tool.get("parameters") or {"type": "object",
                                                                                    "properties": {}}}
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ConfigError(f"an MCP tool needs a non-empty string `name`, got {fn.get('name')!r}")
    return json.dumps({"type": "function", "function": fn})


def system_prompt(platform: str, mcp_tools: list[dict[str, Any]] | tuple = ()) -> str:
    """GUI-Owl's system prompt for ``platform`` (``computer``, ``mobile`` or ``browser``).

    Args:
        platform: Which tool to declare.
        mcp_tools: Extra tools appended to ``<tools>`` (see :func:`mcp_tool_line`).
    """
    brief, rules = _RULES[_check_platform(platform)]
    lines = [tool_line(platform)] + [mcp_tool_line(t) for t in mcp_tools]
    fmt = _RESPONSE_FORMAT.format(mcp=_MCP_CLAUSE if mcp_tools else "", brief=brief)
    return _HEADER + "\n".join(lines) + _CALL_FORMAT + fmt + rules


def prompt_sha256(platform: str) -> str:
    """SHA-256 of :func:`system_prompt` without MCP tools (compare with :data:`OFFICIAL_PROMPT_SHA256`)."""
    return hashlib.sha256(system_prompt(platform).encode("utf-8")).hexdigest()


def parameters_schema(platform: str) -> dict[str, Any]:
    """A well-formed JSON schema of the tool's ``arguments`` (``browser_use``'s enum quirk repaired)."""
    schema = copy.deepcopy(TOOLS[_check_platform(platform)]["function"]["parameters"])
    for prop in schema["properties"].values():
        prop.pop("description", None)
    schema["properties"]["action"]["enum"] = list(ACTION_ARGS[platform])
    schema["additionalProperties"] = False
    return schema
