(function(){
var faces=JSON.parse(document.getElementById('faces').textContent),v=document.getElementById('viewer'),
img=v.querySelector('img'),box=v.querySelector('.box'),cap=v.querySelector('.cap');
img.addEventListener('load',function(){
v.dataset.loaded=img.naturalWidth>0?'1':'0';
});
img.addEventListener('error',function(){
v.dataset.loaded='0';
});
function show(id){
var f=faces[id];
if(!f)return;
img.src=f[0];
box.style.left=(100*f[1]/f[5])+'%';
box.style.top=(100*f[2]/f[6])+'%';
box.style.width=(100*f[3]/f[5])+'%';
box.style.height=(100*f[4]/f[6])+'%';
cap.textContent='face '+id+' \u00b7 '+decodeURIComponent(f[0]);
v.hidden=false;
}
document.addEventListener('click',function(e){
var a=e.target.closest('a.face');
if(a){
e.preventDefault();
show(a.dataset.face);
}
else if(!v.hidden){
v.hidden=true;
img.removeAttribute('src');
}});
document.addEventListener('keydown',function(e){
if(e.key==='Escape'){
v.hidden=true;
img.removeAttribute('src');
}});
var m=/^#face=(\d+)$/.exec(location.hash);
if(m)show(m[1]);
})();
