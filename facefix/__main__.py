from facefix.cli import app

app(prog_name="facefix")
