"""Knowledge Desk: the knowledge base and the assistant (no UI code here)."""
