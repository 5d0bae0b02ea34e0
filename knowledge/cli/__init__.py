"""`kdesk`: one module per command group, sharing one way to open the desk and print JSON. May
import: everything in knowledge/."""
