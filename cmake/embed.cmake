# Embed a file as a NUL-terminated C array: cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P embed.cmake
# (batpak ui's page, src/cli/ui_page.html, becomes ui_page_html in the CLI).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp" "/* ${name}, made into C by cmake/embed.cmake */\nconst char ${NAME}[] = {\n${bytes}0};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
