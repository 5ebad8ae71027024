"""A small Tk desktop application with a state oracle: the "Notes" app of the desktop suite.

Run as ``python -m parsimon.gui.desktop.app STATE_FILE SCENARIO_JSON`` on an X display. The window sits
at (0, 0) with a fixed size and font, so the same scenario always draws the same pixels. It has a
profile name (entry), a "Sync" checkbox, a list of notes (listbox) with an entry, an "Add" and a
"Delete" button, and "Save". Only "Save" changes the saved state. After every change the app writes
``{"saved": ..., "draft": ..., "widgets": [...]}`` to ``STATE_FILE`` (atomically): the saved and the
on-screen values (the oracle) and each widget's name, kind, value and screen box, which the
environment turns into an element table and an accessibility-tree text.
"""

from __future__ import annotations

import json
import os
import sys
import tkinter as tk

FONT = ("DejaVu Sans", 11)
SIZE = (480, 360)


class NotesApp:
    """The application (see the module docstring)."""

    def __init__(self, root: tk.Tk, state_file: str, scenario: dict) -> None:
        self.root, self.state_file = root, state_file
        self.saved = {"name": scenario["name"], "sync": bool(scenario["sync"]), "notes": list(scenario["notes"])}
        root.title("Notes")
        root.geometry(f"{SIZE[0]}x{SIZE[1]}+0+0")
        root.resizable(False, False)
        root.option_add("*Font", FONT)
        self.widgets: dict[str, tuple[str, tk.Widget]] = {}
        tk.Label(root, text="Profile name").place(x=10, y=10)
        self.name = tk.Entry(root, width=24)
        self.name.place(x=130, y=10)
        self.name.insert(0, self.saved["name"])
        self.sync_var = tk.IntVar(value=int(self.saved["sync"]))
        self.sync = tk.Checkbutton(root, text="Sync", variable=self.sync_var, command=self.publish)
        self.sync.place(x=10, y=45)
        tk.Label(root, text="Notes").place(x=10, y=80)
        self.notes = tk.Listbox(root, height=6, width=30, exportselection=False)
        self.notes.place(x=10, y=105)
        for n in self.saved["notes"]:
            self.notes.insert(tk.END, n)
        self.new = tk.Entry(root, width=18)
        self.new.place(x=10, y=250)
        self.add = tk.Button(root, text="Add", command=self.on_add)
        self.add.place(x=200, y=246)
        self.delete = tk.Button(root, text="Delete", command=self.on_delete)
        self.delete.place(x=260, y=246)
        self.save = tk.Button(root, text="Save", command=self.on_save)
        self.save.place(x=10, y=300)
        self.status = tk.Label(root, text="")
        self.status.place(x=90, y=304)
        self.widgets = {"Profile name": ("textbox", self.name), "Sync": ("checkbox", self.sync),
                        "Notes": ("listbox", self.notes), "New note": ("textbox", self.new),
                        "Add": ("button", self.add), "Delete": ("button", self.delete), "Save": ("button", self.save)}
        for entry in (self.name, self.new):
            entry.bind("<KeyRelease>", lambda e: self.publish())
        self.notes.bind("<<ListboxSelect>>", lambda e: self.publish())
        self.new.bind("<Return>", lambda e: self.on_add())
        root.after(50, self.publish)

    def draft(self) -> dict:
        """What the screen shows now."""
        return {"name": self.name.get(), "sync": bool(self.sync_var.get()), "notes": list(self.notes.get(0, tk.END))}

    def on_add(self) -> None:
        text = self.new.get().strip()
        if text and text not in self.notes.get(0, tk.END):
            self.notes.insert(tk.END, text)
        self.new.delete(0, tk.END)
        self.publish()

    def on_delete(self) -> None:
        for i in reversed(self.notes.curselection()):
            self.notes.delete(i)
        self.publish()

    def on_save(self) -> None:
        self.saved = self.draft()
        self.status.config(text="Saved")
        self.publish()

    def publish(self) -> None:
        """Write the oracle's view of the app (atomically)."""
        self.root.update_idletasks()
        widgets = []
        for name, (kind, w) in self.widgets.items():
            rec = {"name": name, "kind": kind, "box": [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(),
                                                        w.winfo_height()]}
            if kind == "textbox":
                rec["value"] = w.get()
            elif kind == "checkbox":
                rec["checked"] = bool(self.sync_var.get())
            elif kind == "listbox":
                rec["items"] = []
                for i, text in enumerate(w.get(0, tk.END)):
                    bbox = w.bbox(i)
                    box = None if bbox is None else [w.winfo_rootx() + bbox[0], w.winfo_rooty() + bbox[1],
                                                     bbox[2], bbox[3]]
                    rec["items"].append({"text": text, "box": box, "selected": i in w.curselection()})
            widgets.append(rec)
        data = {"saved": self.saved, "draft": self.draft(), "widgets": widgets, "status": self.status.cget("text")}
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.state_file)


def main(argv: list[str]) -> None:
    """Entry point: ``app.py STATE_FILE SCENARIO_JSON``."""
    state_file, scenario = argv[0], json.loads(argv[1])
    root = tk.Tk()
    NotesApp(root, state_file, scenario)
    root.mainloop()


if __name__ == "__main__":
    main(sys.argv[1:])
