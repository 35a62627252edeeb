"""The events room: Kubernetes Events about objects ipvsctl cannot use.

`event_recorder` posts a Warning Event where `kubectl describe` shows it, and
counts a repeat on the Event it already posted, as client-go's recorder does.
It sends its requests with the API room's helpers (`sources.api.requests`);
only the agent imports it.
"""

from ipvsctl.events.event_recorder import EventRecorder, post_event

__all__ = ["EventRecorder", "post_event"]
