from promote.cli import app

app()
